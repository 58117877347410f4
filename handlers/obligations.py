"""What the calendar obligations O12-O18 do when they fire (O19's complaint reviews are
in handlers/tickets/digest.py), and which owners and homes they run for: registered with the clock engine's calendar family
(`handlers/clocks/calendar.py`), whose policies say when and for whom
(`handlers/data/calendar_clocks.yaml`). The engine's one check (`handlers.clocks:check_due`,
the `deadlines` job) fires them; each occurrence is recorded once before its action runs,
so an action only builds what to send: pushes (dedup keys per period, sent after the
check's transaction commits) or a campaign (a dedup key per period, started on commit).

The words are schedule.yaml's `texts`; what counts as in arrears is its
`rules.arrears.overdue_after_months`.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import String, cast, literal, select
from sqlalchemy.orm import Session

from ground import ports
from handlers.capability import Capability
from handlers.clocks import ClockSpec, calendar
from handlers.clocks.engine import Occurrence
from handlers.message import Push
from handlers.schedule.config import get_schedule
from handlers.schedule.reach import plan_owner
from handlers.schedule.timing import add_months, local, occasion, quarter_of
from store.models import Clock, Group, Home, Owner, Staff

capability = Capability("obligations")  # O12-O18: the calendar obligations' actions and subjects


# --- helpers ----------------------------------------------------------------------------------

def _push_owner(owner: Owner, text: str, dedup_key: str, source: str, now: datetime) -> list[Push]:
    """One message to one owner on the channel the 48 h window allows (none: unreachable)."""
    p = plan_owner(owner, text, now, None)
    if p is None:
        return []
    channel, kind, addr, payload = p
    return [Push(channel=channel, recipient=addr, kind=kind, payload=payload, dedup_key=dedup_key, priority=6,
                 source=source)]


def _push_staff(userid: str, text: str, dedup_key: str, source: str) -> list[Push]:
    return [Push(channel="wecom", recipient=userid, kind="text", payload={"content": text}, dedup_key=dedup_key,
                 priority=5, source=source)]


def _target(tell: tuple[str, ...]) -> dict:
    """A campaign's audience from the policy's `tell`."""
    target: dict = {}
    if "everyone" in tell:
        target["everyone"] = True
    if "customer_service" in tell:
        target["staff_teams"] = ["customer_service"]
    return target


def _campaign(occ: Occurrence, kind: str, title: str, text: str) -> int:
    """The community's campaign of this occurrence (its dedup key: rule and period, e.g.
    O14:2026-10), started as soon as the check's transaction commits."""
    campaigns = ports.campaigns()  # the edge sends them (bot/campaigns.py)
    camp = campaigns.create_campaign(occ.session, kind=kind, title=title, created_by="scheduler",
                                     target=_target(occ.spec.tell), text=text, dedup_key=f"{occ.spec.rule}:{occ.period}")
    campaigns.start_after_commit(occ.session, camp.id)
    occ.detail["campaign"] = camp.id
    return camp.id


def _building_admin(session: Session, owner: Owner) -> str | None:
    if owner.home is None:
        return None
    g = session.scalar(select(Group).where(Group.kind == "building", Group.building_id == owner.home.building_id))
    return g.staff_admin.userid if g and g.staff_admin else None


# --- O15 arrears: one clock per owner while in arrears ----------------------------------------

def arrears_start(owner: Owner, rules: dict | None = None) -> date | None:
    """The first day `owner` is over `overdue_after_months` in arrears (None: no fees date)."""
    if owner.fees_paid_until is None:
        return None
    rules = rules if rules is not None else get_schedule().rules.get("arrears", {})
    return add_months(owner.fees_paid_until, int(rules.get("overdue_after_months", 1))) + timedelta(days=1)


def _in_arrears(session: Session, spec: ClockSpec, now: datetime) -> list[calendar.Start]:
    today = local(now).date()
    rules = get_schedule().rules.get("arrears", {})
    months = int(rules.get("overdue_after_months", 1))
    # add_months clamps to the month's end, so a few days more than a month back; arrears_start is exact.
    cutoff = add_months(today - timedelta(days=1), -months) + timedelta(days=3)
    found = []
    for o in session.scalars(select(Owner).where(Owner.fees_paid_until.is_not(None), Owner.fees_paid_until <= cutoff,
                                                 calendar.without_clock(spec, owner_id=Owner.id)).order_by(Owner.id)):
        start = arrears_start(o, rules)
        if start is not None and start <= today:
            found.append(calendar.Start(f"owner:{o.id}", start, owner_id=o.id))
    return found


def _arrears_anchor(session: Session, row: Clock, now: datetime) -> date | None:
    """The owner's first day in arrears while they still are (None: paid)."""
    owner = session.get(Owner, row.owner_id) if row.owner_id else None
    start = arrears_start(owner) if owner is not None else None
    return start if start is not None and start <= local(now).date() else None


calendar.source("in_arrears", calendar.Source(candidates=_in_arrears, anchor=_arrears_anchor))


@calendar.action("arrears")
def arrears(occ: Occurrence) -> list[Push]:
    """O15: the owner hears from us, and their building's agent is told to call."""
    s, sched = occ.session, get_schedule()
    o = s.get(Owner, occ.row.owner_id)
    today = local(occ.now).date()
    days = (today - o.fees_paid_until).days
    occ.detail.update(paid_until=o.fees_paid_until.isoformat(), days=days)
    values = dict(name=o.name, room=o.room or "", paid_until=o.fees_paid_until.isoformat(), days=days)
    source = f"O15:owner:{o.id}"
    pushes = _push_owner(o, sched.text("arrears", **values), f"O15:{o.id}:{occ.period}", source, occ.now) \
        if "owner" in occ.spec.tell else []
    if "building_agent" in occ.spec.tell:
        team = sched.rules.get("arrears", {}).get("notify_staff_team", "customer_service")
        agent = _building_admin(s, o) or s.scalar(select(Staff.userid).where(
            Staff.active.is_(True), Staff.team == team, Staff.role == "staff").order_by(Staff.id).limit(1))
        if agent:
            pushes += _push_staff(agent, sched.text("arrears_staff", **values), f"O15s:{o.id}:{occ.period}", source)
    return pushes


# --- O12 warranty: one clock per home, a month before its warranty ends ------------------------

def _warranty_ending(session: Session, spec: ClockSpec, now: datetime) -> list[calendar.Start]:
    today = local(now).date()
    subject = literal("home:") + cast(Home.id, String)
    homes = session.scalars(select(Home).where(Home.warranty_until > today,
                                               Home.warranty_until <= today + timedelta(days=spec.calendar.days + 1),
                                               Home.id.in_(select(Owner.home_id).where(Owner.home_id.is_not(None))),
                                               calendar.without_clock(spec, subject, Home.warranty_until))
                            .order_by(Home.id))
    return [calendar.Start(f"home:{h.id}", h.warranty_until) for h in homes]


def _warranty_anchor(session: Session, row: Clock, now: datetime) -> date | None:
    home = session.get(Home, int(row.subject.split(":")[1]))
    return home.warranty_until if home is not None and home.warranty_until and \
        home.warranty_until > local(now).date() else None


calendar.source("warranty_ending", calendar.Source(candidates=_warranty_ending, anchor=_warranty_anchor))


@calendar.action("warranty")
def warranty(occ: Occurrence) -> list[Push]:
    """O12: every owner of the home hears when its warranty ends."""
    h = occ.session.get(Home, int(occ.row.subject.split(":")[1]))
    occ.detail["room"] = h.room
    pushes: list[Push] = []
    for o in occ.session.scalars(select(Owner).where(Owner.home_id == h.id).order_by(Owner.id)):
        pushes += _push_owner(o, get_schedule().text("warranty", name=o.name, room=h.room,
                                                     until=h.warranty_until.isoformat()),
                              f"O12:{h.id}:{o.id}:{h.warranty_until}", f"O12:home:{h.id}", occ.now)
    return pushes


# --- O14 bills, O16 census, O17 survey, O18 forum: the community's campaigns ------------------

@calendar.action("bills")
def bills(occ: Occurrence) -> list[Push]:
    """O14: every owner's monthly bill, personalised, as one campaign."""
    month = local(occ.at).strftime("%Y年%m月")
    _campaign(occ, "bill", f"{month}账单", get_schedule().texts["bill"].replace("{month}", month))
    return []


@calendar.action("census")
def census(occ: Occurrence) -> list[Push]:
    """O16: the quarterly household census, assigned to the customer-service agents."""
    q = quarter_of(local(occ.at).date())
    _campaign(occ, "census", f"{q}家庭普查", get_schedule().text("census", quarter=q))
    return []


@calendar.action("survey")
def survey(occ: Occurrence) -> list[Push]:
    """O17: the quarterly satisfaction survey; answers come back in the chat
    (handlers.owner_survey opens a short exchange with each owner)."""
    from handlers import owner_survey as sv

    q = quarter_of(local(occ.at).date())
    _campaign(occ, "survey", f"{q}满意度调查", get_schedule().texts["survey"].replace("{quarter}", q))
    occ.detail["opened"] = sv.open_survey(occ.session, q, occ.now)
    return []


@calendar.action("forum")
def forum(occ: Occurrence) -> list[Push]:
    """O18: the quarterly owners' forum notice."""
    sched = get_schedule()
    today = local(occ.at).date()
    q = quarter_of(today)
    held = today + timedelta(days=int(sched.rules.get("forum", {}).get("days_ahead", 14)))
    occ.detail["held_on"] = held.isoformat()
    _campaign(occ, "forum", f"{q}业主座谈会", sched.text("forum", quarter=q, date=f"{held.month}月{held.day}日"))
    return []


# --- O13 greetings and birthdays ----------------------------------------------------------------

@calendar.action("greetings")
def greetings(occ: Occurrence) -> list[Push]:
    """O13: a greeting to every owner on a festival or an official holiday's first day."""
    sched = get_schedule()
    today = local(occ.at).date()
    name = occasion(today, sched)
    occ.detail["occasion"] = name
    if name is not None:
        _campaign(occ, "greeting", name, sched.occasion_texts.get(name) or sched.texts["holiday"].replace("{festival}", name))
    return []


def _with_birthday(session: Session, spec: ClockSpec, now: datetime) -> list[calendar.Start]:
    return [calendar.Start(f"owner:{oid}", bday, owner_id=oid) for oid, bday in session.execute(
        select(Owner.id, Owner.birthday).where(Owner.birthday.is_not(None), calendar.without_clock(spec, owner_id=Owner.id))
        .order_by(Owner.id))]


def _birthday_anchor(session: Session, row: Clock, now: datetime) -> date | None:
    owner = session.get(Owner, row.owner_id) if row.owner_id else None
    return owner.birthday if owner is not None else None


calendar.source("birthday_known", calendar.Source(candidates=_with_birthday, anchor=_birthday_anchor))


@calendar.action("birthdays")
def birthdays(occ: Occurrence) -> list[Push]:
    """O13: the owner's birthday greeting (its day: `every: year` on the birthday)."""
    o = occ.session.get(Owner, occ.row.owner_id)
    year = local(occ.at).year
    return _push_owner(o, get_schedule().text("birthday", name=o.name), f"O13:bday:{o.id}:{year}",
                       f"O13:owner:{o.id}", occ.now)
