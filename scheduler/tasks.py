"""rq tasks of the scheduler: the heavy part of every job. A scheduler job
only enqueues one of these (queue "scheduled", or "bulk" for campaigns).

Each task takes plain values, reads "now" from ground.clock and is safe to run
twice: campaigns carry a dedup key per period, reminders are unique rows per
(rule, subject, period), pushes carry dedup keys.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.queues import get_redis
from ground import clock, keys
from scheduler.campaigns import (create_campaign, due_campaigns, enqueue_campaign, plan_owner, recover_orphans, run_chunk,
                                 track_group_msgs)
from scheduler.config import Schedule, ScheduleError, capability_jobs, get_schedule
from scheduler.timing import add_months, birthday_this_year, local, occasion, quarter_of
from store.db import session_scope
from store.models import Campaign, Group, Owner, Reminder, Staff

log = logging.getLogger(__name__)


# --- helpers ----------------------------------------------------------------------------

def _today(now: datetime) -> date:
    return local(now).date()


def remember(session: Session, rule: str, subject: str, period: str, detail: dict | None = None) -> bool:
    """Record that a clock fired; False when it already had for this period."""
    try:
        with session.begin_nested():
            session.add(Reminder(rule=rule, subject=subject, period=period, detail=detail, created_at=clock.now()))
        return True
    except IntegrityError:
        return False


def _push_owner(session: Session, owner: Owner, text: str, dedup_key: str, source: str, now: datetime) -> int | None:
    """One message to one owner on the channel the 48 h window allows."""
    from bot.outbound import outbox
    from handlers.message import Push

    p = plan_owner(owner, text, now, None)
    if p is None:
        return None
    channel, kind, addr, payload = p
    row = outbox.add(session, Push(channel=channel, recipient=addr, kind=kind, payload=payload,
                                   dedup_key=dedup_key, priority=6, source=source), now)
    return row.id if row is not None else None


def _push_staff(session: Session, userid: str, text: str, dedup_key: str, source: str, now: datetime) -> int | None:
    from bot.outbound import outbox
    from handlers.message import Push

    row = outbox.add(session, Push(channel="wecom", recipient=userid, kind="text", payload={"content": text},
                                   dedup_key=dedup_key, priority=5, source=source), now)
    return row.id if row is not None else None


def _queue(ids: list[int]) -> None:
    from bot.outbound import outbox

    outbox.queue_send([i for i in ids if i])


def _campaign(session: Session, **kw) -> Campaign:
    return create_campaign(session, **kw)


def _community_campaign(rule: str, slot: str, kind: str, title: str, text: str, target: dict | None = None,
                        detail: dict | None = None, inside: Callable[[Session], dict] | None = None) -> tuple[int, dict]:
    """A scheduled campaign for the community, once per `slot` of `rule` (its dedup key
    and the occurrence recorded), started at once. `inside(session)` does more in the same
    transaction and returns what to record with it. (campaign id, what inside returned)."""
    with session_scope() as s:
        camp = _campaign(s, kind=kind, title=title, created_by="scheduler", target=target or {"everyone": True},
                         text=text, dedup_key=f"{rule}:{slot}")
        extra = inside(s) if inside else {}
        remember(s, rule, "community", slot, {"campaign": camp.id, **(detail or {}), **extra})
        cid = camp.id
    _kick(cid)
    return cid, extra


def _kick(campaign_id: int) -> None:
    """Start a due campaign now instead of at the pump's next round."""
    enqueue_campaign(campaign_id)


# --- campaigns --------------------------------------------------------------------------

def run_campaign(campaign_id: int, shard: int = 0, shards: int = 1) -> dict:
    """One chunk of a campaign (one shard of it); re-queues itself while there is more."""
    import time

    r = get_redis()
    lease_s = float(get_schedule().campaign.get("lease_seconds", 10))
    deadline = time.monotonic() + 2 * lease_s + 1
    while True:
        res = run_chunk(campaign_id, shard=shard, shards=shards)
        if res.get("state") != "busy":
            break
        # Another runner holds this shard, alive or dead: a dead one's lease
        # lapses within lease_seconds, then this job carries on in its place.
        if time.monotonic() > deadline:
            return res  # a live runner: it keeps the "queued" marker alive itself
        time.sleep(min(1.0, lease_s / 3))
    r.delete(keys.campaign_queued(campaign_id, shard))
    if res.get("more"):
        enqueue_campaign(campaign_id, shard=shard)
    return res


def pump_campaigns() -> list[int]:
    """Queue every campaign that is due and allowed at this hour."""
    with session_scope() as s:
        recover_orphans(s, get_redis())
    try:  # what the groups' staff owners confirmed of the company bulk sends
        with session_scope() as s:
            track_group_msgs(s)
    except Exception as exc:  # WeCom down or not configured: the next round asks again
        log.warning("group bulk sends not tracked: %s", exc)
    with session_scope() as s:
        due = due_campaigns(s, clock.now())
        em = {c.id for c in s.scalars(select(Campaign).where(Campaign.id.in_(due), Campaign.emergency.is_(True)))}
    return [cid for cid in due if enqueue_campaign(cid, cid in em)]


# --- the capabilities' periodic jobs (Capability.job) ----------------------------------------


def run_capability_job(name: str) -> dict:
    """Run a capability's periodic function and send what it returns."""
    from bot.outbound import outbox
    from handlers.capability import resolve
    from handlers.message import Outcome, Push

    job = capability_jobs()[name]
    fn = resolve(job.fn)
    if not job.session:  # manages its own sessions (the archive poll)
        return {"hook": name, "result": fn()}
    now = clock.now()
    with session_scope() as s:
        res = fn(s, now)
        pushes = res.pushes if isinstance(res, Outcome) else \
            [p for p in res if isinstance(p, Push)] if isinstance(res, (list, tuple)) else []
        ids = [row.id for row in (outbox.add(s, p, now) for p in pushes) if row is not None]
    _queue(ids)
    return {"hook": name, "pushes": len(ids)}


def sweep() -> dict:
    from bot.sweeper import sweep as do_sweep

    return do_sweep()


# --- O15 arrears --------------------------------------------------------------------------

def arrears_due(owner: Owner, today: date, rules: dict) -> tuple[date, int] | None:
    """(start, n) when `owner` is owed a follow-up today: fees unpaid for over
    `overdue_after_months` since `start`, n-th follow-up window of `every_days`."""
    if owner.fees_paid_until is None:
        return None
    start = add_months(owner.fees_paid_until, int(rules.get("overdue_after_months", 1))) + timedelta(days=1)
    if today < start:
        return None
    return start, (today - start).days // int(rules.get("every_days", 15))


def _building_admin(session: Session, owner: Owner) -> str | None:
    if owner.home is None:
        return None
    g = session.scalar(select(Group).where(Group.kind == "building", Group.building_id == owner.home.building_id))
    return g.staff_admin.userid if g and g.staff_admin else None


def arrears() -> dict:
    """O15: owners over a month in arrears hear from us (and their agent is
    told to call) when they cross the month and every 15 days after, until paid."""
    sched = get_schedule()
    rules = sched.rules.get("arrears", {})
    now = clock.now()
    today = _today(now)
    ids, fired = [], []
    with session_scope() as s:
        cs = [m.userid for m in s.scalars(select(Staff).where(
            Staff.active.is_(True), Staff.team == rules.get("notify_staff_team", "customer_service"),
            Staff.role == "staff").order_by(Staff.id))]
        for o in s.scalars(select(Owner).where(Owner.fees_paid_until.is_not(None)).order_by(Owner.id)):
            due = arrears_due(o, today, rules)
            if due is None:
                continue
            start, n = due
            period = f"{start.isoformat()}#{n}"
            if not remember(s, "O15", f"owner:{o.id}", period,
                            {"paid_until": o.fees_paid_until.isoformat(), "days": (today - o.fees_paid_until).days}):
                continue
            values = dict(name=o.name, room=o.room or "", paid_until=o.fees_paid_until.isoformat(),
                          days=(today - o.fees_paid_until).days)
            ids.append(_push_owner(s, o, sched.text("arrears", **values), f"O15:{o.id}:{period}", f"O15:owner:{o.id}", now))
            agent = _building_admin(s, o) or (cs[0] if cs else None)
            if agent:
                ids.append(_push_staff(s, agent, sched.text("arrears_staff", **values), f"O15s:{o.id}:{period}",
                                       f"O15:owner:{o.id}", now))
            fired.append(o.id)
    _queue(ids)
    return {"rule": "O15", "owners": fired}


# --- O12 warranty ---------------------------------------------------------------------------

def warranty() -> dict:
    """O12: one reminder per home, from a month before its warranty ends (a
    missed day is caught up the next day, never twice)."""
    sched = get_schedule()
    days = int(sched.rules.get("warranty", {}).get("days_before", 30))
    now = clock.now()
    today = _today(now)
    ids, fired = [], []
    with session_scope() as s:
        from store.models import Home

        for h in s.scalars(select(Home).where(Home.warranty_until.is_not(None),
                                              Home.warranty_until > today,
                                              Home.warranty_until <= today + timedelta(days=days))):
            owners = list(s.scalars(select(Owner).where(Owner.home_id == h.id)))
            if not owners or not remember(s, "O12", f"home:{h.id}", h.warranty_until.isoformat()):
                continue
            for o in owners:
                ids.append(_push_owner(s, o, sched.text("warranty", name=o.name, room=h.room,
                                                        until=h.warranty_until.isoformat()),
                                       f"O12:{h.id}:{o.id}:{h.warranty_until}", f"O12:home:{h.id}", now))
            fired.append(h.room)
    _queue(ids)
    return {"rule": "O12", "homes": fired}


# --- O14 bills, O16 census, O17 survey, O18 forum: periodic campaigns -------------------------

def bills() -> dict:
    """O14: every owner's monthly bill, personalised, as one campaign."""
    sched = get_schedule()
    now = clock.now()
    month = local(now).strftime("%Y年%m月")
    key = local(now).strftime("%Y-%m")
    cid, _ = _community_campaign("O14", key, "bill", f"{month}账单", sched.texts["bill"].replace("{month}", month))
    return {"rule": "O14", "campaign": cid}


def census() -> dict:
    """O16: the quarterly household census, assigned to the customer-service agents."""
    sched = get_schedule()
    now = clock.now()
    q = quarter_of(_today(now))
    cid, _ = _community_campaign("O16", q, "census", f"{q}家庭普查", sched.text("census", quarter=q),
                                 target={"staff_teams": ["customer_service"]})
    return {"rule": "O16", "campaign": cid}


def survey() -> dict:
    """O17: the quarterly satisfaction survey; answers come back in the chat
    (scheduler.survey opens a short exchange with each owner)."""
    from scheduler import survey as sv

    sched = get_schedule()
    now = clock.now()
    q = quarter_of(_today(now))
    cid, extra = _community_campaign("O17", q, "survey", f"{q}满意度调查", sched.texts["survey"].replace("{quarter}", q),
                                     inside=lambda s: {"opened": sv.open_survey(s, q, now)})
    return {"rule": "O17", "campaign": cid, "opened": extra["opened"]}


def forum() -> dict:
    """O18: the quarterly owners' forum notice."""
    sched = get_schedule()
    now = clock.now()
    today = _today(now)
    q = quarter_of(today)
    held = today + timedelta(days=int(sched.rules.get("forum", {}).get("days_ahead", 14)))
    cid, _ = _community_campaign("O18", q, "forum", f"{q}业主座谈会",
                                 sched.text("forum", quarter=q, date=f"{held.month}月{held.day}日"),
                                 detail={"held_on": held.isoformat()})
    return {"rule": "O18", "campaign": cid}


# --- O13 greetings ------------------------------------------------------------------------------

def greetings() -> dict:
    """O13: a greeting to every owner on a festival or an official holiday's first day."""
    sched = get_schedule()
    now = clock.now()
    today = _today(now)
    name = occasion(today, sched)
    if name is None:
        return {"rule": "O13", "occasion": None}
    cid, _ = _community_campaign("O13", today.isoformat(), "greeting", name,
                                 sched.occasion_texts.get(name) or sched.texts["holiday"].replace("{festival}", name),
                                 detail={"occasion": name})
    return {"rule": "O13", "occasion": name, "campaign": cid}


def birthdays() -> dict:
    """O13: owners whose birthday is today (29 February: on the 28th in common years)."""
    sched = get_schedule()
    now = clock.now()
    today = _today(now)
    ids, fired = [], []
    with session_scope() as s:
        for o in s.scalars(select(Owner).where(Owner.birthday.is_not(None)).order_by(Owner.id)):
            if birthday_this_year(o.birthday, today.year) != today:
                continue
            if not remember(s, "O13", f"owner:{o.id}", f"birthday:{today.year}"):
                continue
            ids.append(_push_owner(s, o, sched.text("birthday", name=o.name), f"O13:bday:{o.id}:{today.year}",
                                   f"O13:owner:{o.id}", now))
            fired.append(o.id)
    _queue(ids)
    return {"rule": "O13", "birthdays": fired}


# The scheduler's own tasks a schedule.yaml job may name; a capability's jobs
# (Capability.job) are their own tasks, by the job's name.
JOB_TASKS: dict[str, Callable[[], object]] = {
    "sweep": sweep, "pump_campaigns": pump_campaigns,
    "arrears": arrears, "warranty": warranty, "bills": bills, "census": census, "survey": survey,
    "forum": forum, "greetings": greetings, "birthdays": birthdays,
}


def task_function(task: str) -> Callable[[], object]:
    """The function behind a job's `task`: the scheduler's own, or a capability's job."""
    if task in JOB_TASKS:
        return JOB_TASKS[task]
    if task in capability_jobs():
        return lambda: run_capability_job(task)
    raise KeyError(f"unknown task {task!r}")


def known_tasks() -> list[str]:
    return sorted({*JOB_TASKS, *capability_jobs()})


def check_tasks(schedule: Schedule) -> Schedule:
    """Every job of schedule.yaml names a task above or a capability's job (config.py reads
    the file and cannot know them). The scheduler checks at start, so a typo stops it
    naming file, job and task."""
    known = known_tasks()
    for name, spec in schedule.jobs.items():
        if spec.task not in known:
            raise ScheduleError(f"{schedule.path.name}: jobs.{name}.task: unknown task {spec.task!r}; "
                                f"known: {known}")
    return schedule


def run_job(name: str, slot: str | None = None) -> object:
    """The rq entry point of a scheduled job (by its schedule.yaml name)."""
    spec = get_schedule().jobs[name]
    res = task_function(spec.task)()
    log.info("job %s (%s): %s", name, slot, res)
    return res
