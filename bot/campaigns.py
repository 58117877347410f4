"""Campaigns: one message to many recipients, planned per recipient, sent
paced, resumable after a crash without sending anything twice.

Life of a campaign
  create (state scheduled, send_at)  ->  plan (one Delivery row per recipient,
  written in one transaction, unique (campaign, recipient))  ->  send in chunks
  (rq jobs on the "bulk" queue; each claims batches of pending deliveries,
  writes their outbox rows, sends them one by one through the sender, paced by
  a shared sliding-window limiter)  ->  done.

Exactly once: a delivery's outbox row (dedup_key campaign:<id>:<recipient>)
is the commit point, and the sender claims a row atomically before sending
it, so nothing is sent twice by two processes. A resumed campaign sends the
rows its predecessor wrote but never handed to the sender, then goes on with
pending deliveries. The single row that was in the sender's hands when the
process died (it may or may not have reached the platform) is sent again only
where the platform drops duplicates (WeCom); on the Official Account it is
marked `unknown` for a person to look at.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import uuid
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.outbound.clients import PlatformError, get_wecom_client
from bot.outbound.options import get_options
from bot.outbound.ratelimit import Limit, landed, take
from bot.outbound.sender import send_one
from bot.queues import get_queue, get_redis
from faq.normalize import clean
from ground import clock, keys, rules
from ground.config import get_settings
from ground.ports import CampaignError
from handlers.message import Push
from handlers.schedule.config import get_schedule, time_scale
from handlers.schedule.reach import plan_owner  # noqa: F401  (also bot.campaigns.plan_owner)
from handlers.schedule.timing import local, may_send, month_days
from handlers.understanding import lexicons
from store.db import session_scope
from store.models import (AuditLog, Building, Campaign, Delivery, Group, GroupBulkSend, Home, OutboxMessage, Owner,
                          Staff)

log = logging.getLogger(__name__)

TARGET_KEYS = ("everyone", "groups", "buildings", "tiers", "owners", "staff", "all_staff", "staff_teams")
# Words SUGGEST urgency: the console shows a hint, never decides (issue 14: a planned
# 停水 notice went to every owner at 01:59). Only the manager's 紧急 tick is an emergency.
EMERGENCY_TICK = "紧急"


def urgency_hint(text: str) -> str | None:
    """The first word in `text` that suggests urgency (for a hint next to the 紧急 tick),
    or None: the tick's own name, or one of the urgent words of handlers/data/priority.yaml
    (the same words that make an owner's report urgent: one list)."""
    t = clean(text or "")
    found = [(t.find(w), w) for w in (EMERGENCY_TICK, *lexicons().priority["urgent"]) if w and w in t]
    return min(found)[1] if found else None


# --- why a delivery failed, in words ------------------------------------------------------

ERRORS_FILE = __import__("pathlib").Path(__file__).with_name("delivery_errors.yaml")
_ENTRY = rules.MapOf(rules.Record(text=rules.Text(), retry=rules.Bool()))
# bot/delivery_errors.yaml: every entry needs a text and a retry flag.
ERRORS = rules.RuleFile(ERRORS_FILE, schema=rules.Record(errors=_ENTRY, words=_ENTRY, unknown=rules.Text()))


def _load_errors() -> dict:
    return ERRORS.get()


def describe_error(error: str | None) -> str:
    """The platform's error in words (\"43004 require subscribe (...)\" -> 业主已取消关注公众号)."""
    import re

    data = _load_errors()
    text = (error or "").strip()
    m = re.match(r"^(-?\d+)\b", text)
    if m and int(m.group(1)) in data["errors"]:
        return data["errors"][int(m.group(1))]["text"]
    for word, entry in data["words"].items():
        if word in text:
            return entry["text"]
    return data["unknown"] + (f"（{m.group(1)}）" if m else "")


# --- creation and cancellation ---------------------------------------------------------

def _check_target(target: dict) -> dict:
    if not isinstance(target, dict) or not target:
        raise CampaignError("target must name groups, buildings, tiers, owners, staff or everyone")
    unknown = set(target) - set(TARGET_KEYS)
    if unknown:
        raise CampaignError(f"unknown target keys {sorted(unknown)}; use {TARGET_KEYS}")
    return dict(target)


def create_campaign(session: Session, *, kind: str, title: str, text: str, target: dict,
                    send_at: datetime | None = None, emergency: bool = False, created_by: str = "system",
                    dedup_key: str | None = None, template_id: str | None = None) -> Campaign:
    """Record a campaign (sent by the pump when due). With `dedup_key`, a second
    call returns the existing campaign instead of creating another."""
    if dedup_key:
        existing = session.scalar(select(Campaign).where(Campaign.dedup_key == dedup_key))
        if existing is not None:
            return existing
    now = clock.now()
    camp = Campaign(kind=kind, title=title[:128], text=text, target=_check_target(target),
                    send_at=send_at or now, emergency=emergency, state="scheduled", created_by=created_by,
                    dedup_key=dedup_key, template_id=template_id, created_at=now)
    session.add(camp)
    session.flush()
    return camp


def create_announcement(session: Session, text: str, target: dict, at: datetime | None = None,
                        emergency: bool | None = None, created_by: str = "admin") -> Campaign:
    """An announcement for /公告 and the admin API.

    target: {"everyone": True} | {"groups": [chat_id...] or "all"} | {"buildings": ["1栋"...]} |
    {"tiers": ["金卡"...]} | {"owners": [owner_id...]} | {"staff": [userid...]} (combinable).
    at: when to send (None = now). emergency: only True (the manager's 紧急 tick) makes it
    an emergency, sent at once through quiet hours; a word in the text never does
    (`urgency_hint` only suggests the tick). Anything else waits out the quiet hours.
    Queues the first chunk at once when due; otherwise the pump starts it.
    """
    text = (text or "").strip()
    if not text:
        raise CampaignError("公告内容不能为空")
    emergency = emergency is True
    now = clock.now()
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=clock.CST)
    if emergency:
        at = None  # "immediately", whatever time was asked
    if at is not None and at < now - timedelta(minutes=1):
        raise CampaignError("发送时间已过")
    camp = create_campaign(session, kind="announcement", title=text[:40], text=text, target=target,
                           send_at=at or now, emergency=bool(emergency), created_by=created_by)

    session.add(AuditLog(actor=created_by, action="announcement.create", target=f"campaign:{camp.id}",
                         detail={"target": camp.target, "emergency": camp.emergency,
                                 "send_at": camp.send_at.isoformat()}, created_at=now))
    if camp.send_at <= now + timedelta(seconds=30):
        start_after_commit(session, camp.id, camp.emergency)
    return camp


def enqueue_campaign(campaign_id: int, emergency: bool = False, shard: int | None = None) -> bool:
    """Queue a chunk of the campaign (every shard, or one) unless already queued or running."""
    c = get_schedule().campaign
    shards = max(1, int(c.get("shards", 1)))
    r = get_redis()
    queued = False
    for k in ([shard] if shard is not None else range(shards)):
        # The marker is kept alive by the running chunk (its lease) and cleared at
        # its end; a dead worker's marker lapses within a lease, so the pump resumes.
        if not r.set(keys.campaign_queued(campaign_id, k), "1", nx=True,
                     ex=int(c["chunk_seconds"]) + 120):
            continue
        get_queue("bulk").enqueue("bot.campaigns.run_campaign", campaign_id, k, shards, at_front=emergency,
                                  job_timeout=int(c["chunk_seconds"]) + 300)
        queued = True
    return queued


def run_campaign(campaign_id: int, shard: int = 0, shards: int = 1) -> dict:
    """One chunk of a campaign (one shard of it); re-queues itself while there is more."""
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


def start_after_commit(session: Session, campaign_id: int, emergency: bool = False) -> None:
    """Queue the campaign as soon as the caller's transaction commits (a 停水
    notice must not wait for the pump's next round; before the commit a worker
    would not see the campaign yet)."""
    from sqlalchemy import event

    def _go(_session) -> None:
        try:
            enqueue_campaign(campaign_id, emergency)
        except Exception as exc:  # Redis down: the pump starts it later
            log.warning("could not queue campaign %s now (%s); the pump will", campaign_id, exc)

    event.listen(session, "after_commit", _go, once=True)


def cancel_announcement(session: Session, campaign_id: int, cancelled_by: str = "admin") -> dict:
    """Cancel what has not gone out yet. Returns {"cancelled": bool, "sent": n,
    "withdrawn": n, "state": ...}; a finished campaign cannot be cancelled."""
    camp = session.get(Campaign, campaign_id)
    if camp is None:
        raise CampaignError(f"没有编号为 {campaign_id} 的公告")
    if camp.state in ("done", "cancelled"):
        sent = _count(session, camp.id, "sent")
        return {"cancelled": False, "state": camp.state, "sent": sent, "withdrawn": 0}
    now = clock.now()
    withdrawn = session.execute(update(Delivery).where(Delivery.campaign_id == camp.id, Delivery.state == "pending")
                                .values(state="cancelled")).rowcount
    # Rows written but not yet attempted by the sender are withdrawn from the outbox too.
    held = list(session.scalars(select(Delivery).where(Delivery.campaign_id == camp.id, Delivery.state == "sending")))
    for d in held:
        ob = session.get(OutboxMessage, d.outbox_id) if d.outbox_id else None
        # Not yet claimed by the sender (a claim moves next_attempt_at a lease ahead).
        if ob is not None and ob.state == "queued" and ob.attempts == 0 and ob.next_attempt_at <= now:
            ob.state, ob.last_error = "dead", "campaign cancelled"
            d.state = "cancelled"
            withdrawn += 1
    camp.state, camp.cancelled_at, camp.cancelled_by = "cancelled", now, cancelled_by
    sent = _count(session, camp.id, "sent")

    session.add(AuditLog(actor=cancelled_by, action="announcement.cancel", target=f"campaign:{camp.id}",
                         detail={"sent": sent, "withdrawn": withdrawn}, created_at=now))
    session.flush()
    return {"cancelled": True, "state": "cancelled", "sent": sent, "withdrawn": withdrawn}


def failure_reasons(session: Session, campaign_ids: list[int]) -> dict[int, list[tuple[str, int]]]:
    """campaign id -> [(reason in words, how many)] of its failed deliveries, most first."""
    out: dict[int, list[tuple[str, int]]] = {i: [] for i in campaign_ids}
    if not campaign_ids:
        return out
    for cid, err, n in session.execute(select(Delivery.campaign_id, Delivery.error, func.count())
                                       .where(Delivery.campaign_id.in_(campaign_ids), Delivery.state == "failed")
                                       .group_by(Delivery.campaign_id, Delivery.error)):
        out[cid].append((err or _load_errors()["unknown"], n))
    for v in out.values():
        v.sort(key=lambda kv: -kv[1])
    return out


def retry_failed(session: Session, campaign_id: int, retried_by: str = "admin") -> int:
    """Send the failed deliveries of a campaign again (the manager's 重试); returns how many.

    Each failed delivery's outbox row (its dedup key is the commit point) is put back in
    the queue untried and the delivery back to `sending`, so the campaign's runner sends
    it once more, paced, and records the new outcome (and, again, why it failed)."""
    camp = session.get(Campaign, campaign_id)
    if camp is None:
        raise CampaignError(f"没有编号为 {campaign_id} 的公告")
    if camp.state == "cancelled":
        raise CampaignError("公告已取消，不能重试")
    now = clock.now()
    failed = list(session.execute(select(Delivery.id, Delivery.outbox_id).where(
        Delivery.campaign_id == camp.id, Delivery.state == "failed")).all())
    if not failed:
        return 0
    outbox_ids = [o for _, o in failed if o]
    if outbox_ids:
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(outbox_ids), OutboxMessage.state == "dead")
                        .values(state="queued", attempts=0, next_attempt_at=now, last_error=None))
    session.execute(update(Delivery).where(Delivery.id.in_([d for d, o in failed if o]))
                    .values(state="sending", error=None))
    # Never written to the outbox (a bulk send into a group, or not reached): planned again.
    session.execute(update(Delivery).where(Delivery.id.in_([d for d, o in failed if not o]))
                    .values(state="pending", error=None))
    if camp.state == "done":
        camp.state, camp.finished_at = "sending", None

    session.add(AuditLog(actor=retried_by, action="announcement.retry", target=f"campaign:{camp.id}",
                         detail={"deliveries": len(failed)}, created_at=now))
    session.flush()
    start_after_commit(session, camp.id, camp.emergency)
    return len(failed)


def audience(session: Session, target: dict) -> dict:
    """Who a target reaches, before sending: {"label": "全体业主" | "1栋、2栋" ..., "owners": n,
    "staff": n, "groups": n, "count": total} (for the confirmation step)."""
    target = _check_target(target)
    labels = []
    if target.get("everyone"):
        labels.append("全体业主")
    if target.get("buildings"):
        labels.append("、".join(map(str, target["buildings"])))
    if target.get("tiers"):
        labels.append("、".join(map(str, target["tiers"])) + "会员")
    if target.get("owners"):
        labels.append(f"指定业主{len(target['owners'])}位")
    owners = sum(1 for _ in _owners_for(session, target))
    staff = 0
    if target.get("all_staff") or target.get("staff") or target.get("staff_teams"):
        from sqlalchemy import or_

        q = select(func.count()).select_from(Staff).where(Staff.active.is_(True))
        if not target.get("all_staff"):
            q = q.where(or_(Staff.userid.in_(target.get("staff") or []),
                            Staff.team.in_(target.get("staff_teams") or [])))
        staff = session.scalar(q) or 0
        labels.append("全体员工" if target.get("all_staff") else f"员工{staff}位")
    groups = 0
    if target.get("groups"):
        wanted = target["groups"]
        q = select(func.count()).select_from(Group)
        q = q.where(Group.kind.in_(("vip", "building"))) if wanted in ("all", ["all"]) else \
            q.where(Group.chat_id.in_(wanted))
        groups = session.scalar(q) or 0
        labels.append("全部业主群" if wanted in ("all", ["all"]) else f"业主群{groups}个")
    return {"label": "；".join(labels), "owners": owners, "staff": staff, "groups": groups,
            "count": owners + staff + groups}


def _count(session: Session, campaign_id: int, state: str) -> int:
    return session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.campaign_id == campaign_id, Delivery.state == state)) or 0


def campaign_status(session: Session, campaign_id: int) -> dict:
    camp = session.get(Campaign, campaign_id)
    if camp is None:
        raise CampaignError(f"no campaign {campaign_id}")
    rows = session.execute(select(Delivery.state, func.count()).where(Delivery.campaign_id == campaign_id)
                           .group_by(Delivery.state)).all()
    return {"id": camp.id, "kind": camp.kind, "state": camp.state, "emergency": camp.emergency,
            "send_at": camp.send_at.isoformat(), "deliveries": {s: n for s, n in rows},
            "failures": dict(failure_reasons(session, [camp.id])[camp.id])}


# --- planning: who gets what, on which channel ------------------------------------------

def _owners_for(session: Session, target: dict) -> Iterable[Owner]:
    q = select(Owner)
    conds = []
    # Streamed (yield_per): a 100,000-owner campaign must not hold every Owner at once.
    q = q.execution_options(yield_per=2000)
    if target.get("everyone"):
        return session.scalars(q.order_by(Owner.id))
    if target.get("buildings"):
        conds.append(Owner.home_id.in_(select(Home.id).join(Building, Home.building_id == Building.id)
                                       .where(Building.code.in_(target["buildings"]))))
    if target.get("tiers"):
        conds.append(Owner.tier.in_(target["tiers"]))
    if target.get("owners"):
        conds.append(Owner.id.in_([int(i) for i in target["owners"]]))
    if not conds:
        return []
    from sqlalchemy import or_

    return session.scalars(q.where(or_(*conds)).order_by(Owner.id))


def _fmt(text: str, **values) -> str:
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):
        return text  # a brace in an announcement is text, not a placeholder


def plan(session: Session, camp: Campaign, now: datetime | None = None) -> int:
    """Write one delivery per recipient (in the caller's transaction). Personal
    placeholders ({name}, {room}) are filled per owner."""
    now = now or clock.now()
    target = camp.target or {}
    personal = "{" in camp.text
    rows: list[dict] = []
    seen: set[str] = set()
    written = 0

    def write() -> None:  # in slices: 100,000 rows of payloads held at once cost ~300 MB
        nonlocal written
        if rows:
            session.execute(Delivery.__table__.insert(), rows)
            written += len(rows)
            rows.clear()

    def add(key: str, channel: str, kind: str, address: str, payload: dict | None, state: str = "pending",
            error: str | None = None) -> None:
        if key in seen:
            return
        seen.add(key)
        rows.append({"campaign_id": camp.id, "recipient_key": key, "channel": channel, "kind": kind,
                     "address": address, "payload": payload, "state": state, "attempts": 0, "error": error})
        if len(rows) >= 2000:
            write()

    for o in _owners_for(session, target):
        text = _fmt(camp.text, name=o.name, room=o.room or "",
                    paid_until=o.fees_paid_until.isoformat() if o.fees_paid_until else "—") if personal else camp.text
        p = plan_owner(o, text, now, camp.template_id)
        if p is None:
            add(f"owner:{o.id}", "mp", "none", "", None, "skipped", "no openid")
            continue
        channel, kind, addr, payload = p
        # The plain-text campaign body is not copied into 10,000 rows.
        add(f"owner:{o.id}", channel, kind, addr, None if (kind == "text" and not personal) else payload)

    staff_q = None
    if target.get("all_staff"):
        staff_q = select(Staff).where(Staff.active.is_(True))
    elif target.get("staff") or target.get("staff_teams"):
        from sqlalchemy import or_

        staff_q = select(Staff).where(Staff.active.is_(True), or_(Staff.userid.in_(target.get("staff") or []),
                                                                    Staff.team.in_(target.get("staff_teams") or [])))
    if staff_q is not None:
        for st in session.scalars(staff_q.order_by(Staff.id)):
            add(f"staff:{st.userid}", "wecom", "text", st.userid, None)

    if target.get("groups"):
        month = local(now).strftime("%Y-%m")
        cap = month_days(local(now).year, local(now).month)
        wanted = target["groups"]
        gq = select(Group).where(Group.kind.in_(("vip", "building"))) if wanted in ("all", ["all"]) else \
            select(Group).where(Group.chat_id.in_(wanted))
        for g in session.scalars(gq.order_by(Group.id)):
            key = f"group:{g.chat_id}"
            admin = g.staff_admin
            if admin is None:
                add(key, "wecom", "group_task", "", None, "skipped", "group has no staff admin")
                continue
            used = session.scalar(select(func.count()).select_from(GroupBulkSend).where(
                GroupBulkSend.group_id == g.id, GroupBulkSend.month == month)) or 0
            if used >= cap:  # PLATFORM.md: at most as many bulk sends a month as the month has days
                add(key, "wecom", "group_task", admin.userid, None, "skipped", f"monthly bulk-send cap {cap} reached")
                continue
            session.add(GroupBulkSend(group_id=g.id, month=month, campaign_id=camp.id, created_at=now))
            # WeCom's company bulk send: the group's staff owner confirms with one tap
            # (`group_msg`); the ready-to-send task is the fall-back (`_send_group_msgs`).
            kind = "group_msg" if get_schedule().campaign.get("group_bulk_send", True) else "group_task"
            add(key, "wecom", kind, admin.userid,
                {"group_id": g.chat_id, "group_name": g.name, "text": camp.text,
                 "reason": f"campaign:{camp.id}", "bulk_sends_this_month": used + 1, "cap": cap})
    write()
    camp.state, camp.planned_at = "planned", now
    camp.stats = {"recipients": written}
    session.flush()
    return written


# --- sending -----------------------------------------------------------------------------

def _push_for(camp: Campaign, d: Delivery):
    payload = (d.payload or {"content": camp.text}) if d.kind == "text" else dict(d.payload or {})
    return Push(channel=d.channel, recipient=d.address, kind=d.kind, payload=payload,
                dedup_key=f"campaign:{camp.id}:{d.recipient_key}", priority=0 if camp.emergency else 7,
                source=f"campaign:{camp.id}")


class _Pace:
    """The campaign's per-app pace for one channel, on the outbound rate limiter
    (bot.outbound.ratelimit: a sliding log in Redis shared by every worker). A slot is
    held from before the call until its answer is back, then counts from that moment
    (`take` + `landed`): the platform stamps a call in between, so no window of the
    platform's holds more than the limit, however late a call lands on a busy host."""

    def __init__(self, channel: str) -> None:
        c = get_schedule().campaign
        per_min = c.get("app_per_minute") or get_settings().wecom_app_per_minute
        if channel == "mp":
            per_min = c.get("mp_per_minute") or per_min
        window = float(c["window_seconds"]) * time_scale()
        self.per_s = per_min / window
        # Only for the platform's clock running a little faster than ours (the delay of
        # a call is covered by landing it): a small fraction of the window.
        margin = min(float(c.get("pace_margin_seconds", 0.1)), window * 0.02)
        self.limits = [Limit(f"campaign:app:{channel}", int(per_min), window + margin)]
        # The longest one send can keep its slot in flight: token fetch, rate wait, the call.
        opts = get_options()
        self.hold_s = 3 * opts.http_timeout_s + opts.inline_wait_s + 5.0

    def acquire(self, deadline: float) -> str | None:
        """A slot (hand it to `landed` once the call is back), or None past `deadline`."""
        while True:
            wait, slot = take(self.limits, self.hold_s)
            if slot is not None:
                return slot
            if time.monotonic() + wait > deadline:
                return None
            time.sleep(min(wait, 0.5))

    def landed(self, slot: str | None) -> None:
        landed(self.limits, slot)


def _write_batch(session: Session, camp: Campaign, size: int, now: datetime, mine=True) -> list[tuple[int, int, str]]:
    """Turn up to `size` pending deliveries into outbox rows (one transaction,
    set-wise: a 10,000-recipient campaign must not pay an ORM flush per row)."""
    from sqlalchemy import bindparam

    rows = session.execute(select(Delivery.id, Delivery.recipient_key, Delivery.channel, Delivery.kind,
                                  Delivery.address, Delivery.payload)
                           .where(Delivery.campaign_id == camp.id, Delivery.state == "pending", mine,
                                  Delivery.kind != "group_msg")  # sent by _send_group_msgs
                           .order_by(Delivery.id).limit(size)).all()
    if not rows:
        return []
    prio = 0 if camp.emergency else 7
    rows = _replan_closed_windows(session, camp, [SimpleNamespace(**r._mapping) for r in rows], now)
    keys = {f"campaign:{camp.id}:{r.recipient_key}": r for r in rows}
    existing = set(session.scalars(select(OutboxMessage.dedup_key).where(OutboxMessage.dedup_key.in_(list(keys)))))
    new = [{"channel": r.channel, "kind": r.kind, "recipient": r.address,
            "payload": (r.payload or {"content": camp.text}) if r.kind == "text" else (r.payload or {}),
            "dedup_key": k, "state": "queued", "attempts": 0, "next_attempt_at": now, "priority": prio,
            "source": f"campaign:{camp.id}", "created_at": now}
           for k, r in keys.items() if k not in existing]
    if new:
        session.execute(OutboxMessage.__table__.insert(), new)
    ids = {k: (i, st, a) for k, i, st, a in session.execute(
        select(OutboxMessage.dedup_key, OutboxMessage.id, OutboxMessage.state, OutboxMessage.attempts)
        .where(OutboxMessage.dedup_key.in_(list(keys)))).all()}
    t = Delivery.__table__
    session.execute(t.update().where(t.c.id == bindparam("did")).values(
        state="sending", outbox_id=bindparam("oid"), attempts=t.c.attempts + 1),
        [{"did": r.id, "oid": ids[k][0]} for k, r in keys.items()])
    # Only rows nobody has tried yet are ours to send; older ones the outbox settles.
    return [(r.id, ids[k][0], r.channel) for k, r in keys.items() if ids[k][1] == "queued" and ids[k][2] == 0]


def _replan_closed_windows(session: Session, camp: Campaign, rows: list, now: datetime) -> list:
    """A campaign planned at 20:55 may go out at 08:03 after the quiet hours: an
    owner's 48 h window can have closed in between, so customer-service texts
    are checked again now and turned into template messages where needed."""
    cs = {int(r.recipient_key.split(":")[1]): r for r in rows
          if r.channel == "mp" and r.kind == "text" and r.recipient_key.startswith("owner:")}
    if not cs:
        return rows
    owners = {o.id: o for o in session.scalars(select(Owner).where(Owner.id.in_(list(cs))))}
    out = []
    for r in rows:
        o = owners.get(int(r.recipient_key.split(":")[1])) if r.recipient_key.startswith("owner:") else None
        if o is not None and r.kind == "text" and r.channel == "mp":
            text = (r.payload or {}).get("content") or camp.text
            channel, kind, addr, payload = plan_owner(o, text, now, camp.template_id) or (None,) * 4
            if kind == "template":
                session.execute(update(Delivery).where(Delivery.id == r.id).values(kind="template", payload=payload))
                r.kind, r.payload = "template", payload
        out.append(r)
    return out


def _send(outbox_id: int) -> str:
    return send_one(outbox_id)


class _Lease:
    """A Redis lock held as a short lease and renewed while work goes on."""

    def __init__(self, r, key: str, ttl_s: float, companions: list[str]) -> None:
        self.r, self.key, self.ttl_ms = r, key, int(ttl_s * 1000)
        self.token = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.companions = companions  # keys kept alive with the lease (the "queued" marker)
        self._last = 0.0
        self._mu = threading.Lock()

    def acquire(self) -> bool:
        ok = bool(self.r.set(self.key, self.token, nx=True, px=self.ttl_ms))
        if ok:
            self._last = time.monotonic()
            # Renewed from a thread of its own too: a runner waiting on the pace
            # (or a slow commit) must not look dead to the pump or another runner.
            self._stop = threading.Event()
            threading.Thread(target=self._keepalive, daemon=True, name="campaign-lease").start()
        return ok

    def _keepalive(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                self._last = 0.0
                self.renew()
            except Exception as exc:  # Redis blip: the next round tries again
                log.warning("campaign lease %s not renewed: %s", self.key, exc)

    def renew(self) -> None:
        with self._mu:  # at most every second, from any sending thread
            if time.monotonic() - self._last < 1.0:
                return
            self._last = time.monotonic()
        if self.r.get(self.key) in (self.token, self.token.encode()):
            pipe = self.r.pipeline()
            pipe.pexpire(self.key, self.ttl_ms)
            for k in self.companions:
                pipe.pexpire(k, self.ttl_ms)
            pipe.execute()

    def release(self) -> None:
        if getattr(self, "_stop", None) is not None:
            self._stop.set()
        if self.r.get(self.key) in (self.token, self.token.encode()):
            self.r.delete(self.key)


class _on_sigterm:
    """SIGTERM (a deploy, `kill`) lets the calls in flight finish and the chunk
    settle, instead of dying mid-call; rq's work horse would die at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._installed, self._old = False, None
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGTERM, lambda *_: self.event.set())
                self._installed = True
            except ValueError:
                pass

    def is_set(self) -> bool:
        return self.event.is_set()

    def restore(self) -> None:
        if not self._installed:
            return
        old = self._old if self._old is not None else signal.SIG_DFL  # None: set outside Python
        signal.signal(signal.SIGTERM, old)
        if self.event.is_set():  # hand the signal on now that the chunk is settled
            if callable(old):
                old(signal.SIGTERM, None)
            elif old == signal.SIG_DFL:
                os.kill(os.getpid(), signal.SIGTERM)


def _recover(session: Session, camp: Campaign, inflight: list[int]) -> dict:
    """After a process died: the outbox rows it had in flight (claimed by the
    sender, not recorded as sent) may or may not have reached the platform.
    WeCom's duplicate check makes a resend harmless; the Official Account has
    none, so there a row is held back as `unknown` (never twice beats maybe twice)."""
    out: dict[str, list[str]] = {}
    resend_ok = set(get_schedule().campaign.get("resend_unknown_channels") or [])
    for oid in inflight:
        d = session.scalar(select(Delivery).where(Delivery.campaign_id == camp.id, Delivery.outbox_id == oid))
        ob = session.get(OutboxMessage, oid)
        if d is None or ob is None or ob.state != "queued" or d.state != "sending":
            continue
        if ob.next_attempt_at is None or ob.next_attempt_at <= clock.now():
            continue  # the sender never claimed it (a claim moves it one lease ahead): plain resend
        if d.channel in resend_ok:
            ob.next_attempt_at = clock.now()  # send again now, the platform drops a duplicate
            out.setdefault("resent", []).append(d.recipient_key)
            continue
        ob.state, ob.last_error = "dead", "in flight when the sending process died; not resent (no duplicate check)"
        d.state, d.error = "unknown", ob.last_error
        out.setdefault("unknown", []).append(d.recipient_key)
        log.warning("campaign %s: %s was in flight at a crash; marked unknown", camp.id, d.recipient_key)
    return out


def run_chunk(campaign_id: int, max_seconds: float | None = None, shard: int = 0, shards: int = 1) -> dict:
    """Send as much of a campaign as `max_seconds` allows; returns what happened
    and whether more remains ("more": True -> the caller re-queues).

    A big campaign can be sent by several workers at once: shard k of n takes
    the deliveries with id % n == k (each shard has its own lock and in-flight
    set; the pace is one Redis limiter for all of them). Shard 0 plans."""
    sched = get_schedule()
    max_seconds = max_seconds if max_seconds is not None else float(sched.campaign["chunk_seconds"])
    deadline = time.monotonic() + max_seconds
    r = get_redis()
    lock_key = keys.campaign_lock(campaign_id, shard)
    mine = (Delivery.id % shards) == shard
    # One runner per shard at a time. The lock is a short lease renewed while
    # sending, so after a crash the next runner can take over within seconds.
    lease = _Lease(r, lock_key, float(sched.campaign.get("lease_seconds", 10)),
                   [keys.campaign_queued(campaign_id, shard)])
    if not lease.acquire():
        return {"campaign": campaign_id, "state": "busy", "more": False}
    stopping = _on_sigterm()
    sent = failed = 0
    pool = None
    try:
        begun = _begin_chunk(r, campaign_id, shard, sched)
        if isinstance(begun, dict):
            return begun
        recovered, emergency = begun
        r.delete(keys.campaign_inflight(campaign_id, shard))
        _send_group_msgs(campaign_id, mine)
        paces: dict[str, _Pace] = {}
        # A few calls in flight at once: a platform call mostly waits on the network.
        pool = ThreadPoolExecutor(max(1, int(sched.campaign.get("concurrency", 4))), thread_name_prefix="campaign")
        while time.monotonic() < deadline and not stopping.is_set():
            lease.renew()
            work = _next_work(campaign_id, emergency, sched, paces, mine)
            if isinstance(work, dict):
                return {**work, "sent": sent}
            if not work:
                break
            results = _send_batch(r, keys.campaign_inflight(campaign_id, shard), campaign_id, work, paces, deadline, pool,
                                  lease, stopping)
            done = [(did, oid) for (did, oid, _), res in zip(work, results) if res is not None]
            sent += sum(res == "sent" for res in results)  # None: not sent before the deadline, next chunk
            failed += sum(res in ("dead", "error") for res in results)
            with session_scope() as s:
                _settle(s, done)
        return _end_chunk(campaign_id, mine, sent, failed, recovered)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        stopping.restore()
        lease.release()


def _begin_chunk(r, campaign_id: int, shard: int, sched) -> dict | tuple[dict, bool]:
    """Plan (shard 0) and start the campaign, recover rows in flight at a crash:
    (recovered, emergency), or the result to return when there is nothing to send now."""
    with session_scope() as s:
        camp = s.get(Campaign, campaign_id)
        if camp is None or camp.state in ("done", "cancelled"):
            return {"campaign": campaign_id, "state": camp.state if camp else "missing", "more": False}
        now = clock.now()
        if camp.send_at > now:
            return {"campaign": campaign_id, "state": "waiting", "more": False}
        if not may_send(now, camp.emergency, sched):
            return {"campaign": campaign_id, "state": "paused", "more": False}
        if camp.state == "scheduled":
            if shard != 0:
                time.sleep(0.5)  # shard 0 is writing the deliveries
                return {"campaign": campaign_id, "state": "planning", "more": True}
            plan(s, camp, now)
        if camp.state == "planned":
            camp.state, camp.started_at = "sending", now
        recovered = _recover(s, camp, [int(x) for x in r.smembers(keys.campaign_inflight(campaign_id, shard))])
        return recovered, camp.emergency


def _next_work(campaign_id: int, emergency: bool, sched, paces: dict, mine) -> list[tuple[int, int, str]] | dict:
    """The next batch (delivery id, outbox id, channel), or the result to return
    when the campaign was cancelled or quiet hours began."""
    with session_scope() as s:
        camp = s.get(Campaign, campaign_id)
        if camp.state == "cancelled":
            return {"campaign": campaign_id, "state": "cancelled", "more": False}
        now = clock.now()
        if not may_send(now, emergency, sched):
            return {"campaign": campaign_id, "state": "paused", "more": False}
        # Rows written before a crash and never claimed go first, then new ones.
        work: list[tuple[int, int, str]] = [
            (d.id, ob.id, d.channel) for d, ob in s.execute(
                select(Delivery, OutboxMessage).join(OutboxMessage, OutboxMessage.id == Delivery.outbox_id)
                .where(Delivery.campaign_id == campaign_id, Delivery.state == "sending", mine,
                       OutboxMessage.state == "queued", OutboxMessage.attempts == 0,
                       OutboxMessage.next_attempt_at <= now)
                .order_by(Delivery.id).limit(int(sched.campaign["batch_size"]))).all()]
        # A batch must go out before the sweeper (10 s) would hand its rows
        # to the outbound workers, which know nothing of this campaign's pace.
        rate = min((paces.get(c) or paces.setdefault(c, _Pace(c))).per_s for c in ("mp", "wecom"))
        size = max(1, min(int(sched.campaign["batch_size"]), int(rate * 2)))
        if len(work) < size:
            work += _write_batch(s, camp, size - len(work), now, mine)
        return work


def _end_chunk(campaign_id: int, mine, sent: int, failed: int, recovered: dict) -> dict:
    """Settle what is still held, count the deliveries, close a finished campaign."""
    with session_scope() as s:
        held = [(d.id, d.outbox_id) for d in s.scalars(select(Delivery).where(
            Delivery.campaign_id == campaign_id, Delivery.state == "sending", mine))]
        _settle(s, held)
        counts = dict(s.execute(select(Delivery.state, func.count()).where(Delivery.campaign_id == campaign_id)
                                .group_by(Delivery.state)).all())
        camp = s.get(Campaign, campaign_id)
        left, waiting = counts.get("pending", 0), counts.get("sending", 0)
        mine_left = s.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.campaign_id == campaign_id, Delivery.state == "pending", mine)) or 0
        if left == 0 and waiting == 0 and camp.state == "sending":
            camp.state, camp.finished_at = "done", clock.now()
        camp.stats = {**(camp.stats or {}), "deliveries": counts}
        return {"campaign": campaign_id, "state": camp.state, "sent": sent, "failed": failed,
                "recovered": recovered, "deliveries": counts,
                # Rows the outbox retries later are settled by the pump's next round.
                "more": mine_left > 0 and camp.state == "sending"}


def _send_batch(r, key: str, campaign_id: int, work: list[tuple[int, int, str]], paces: dict[str, "_Pace"],
                deadline: float, pool: ThreadPoolExecutor, lease: "_Lease", stopping) -> list[str | None]:
    """Send a batch through the sender, paced, a few at a time. Each row is in
    the in-flight set only while the sender has it: after a crash that set
    names exactly the rows that may or may not have reached the platform."""
    stop = threading.Event()

    def one(item: tuple[int, int, str]) -> str | None:
        _, oid, channel = item
        slot = None if stop.is_set() or stopping.is_set() else paces[channel].acquire(deadline)
        if slot is None:
            stop.set()
            return None
        lease.renew()
        r.sadd(key, oid)
        try:
            return _send(oid)
        except Exception as exc:  # one bad row must not stop the campaign
            log.warning("campaign %s: outbox %s raised %s", campaign_id, oid, exc)
            return "error"
        finally:
            try:
                paces[channel].landed(slot)  # after the answer: see _Pace
            except Exception as exc:  # Redis gone: the slot stays held until it lapses (safe)
                log.warning("campaign %s: pace slot not landed (%s)", campaign_id, exc)
            r.srem(key, oid)

    for _, _, channel in work:
        if channel not in paces:
            paces[channel] = _Pace(channel)
    return list(pool.map(one, work))


def _settle(session: Session, pairs: list[tuple[int, int]]) -> None:
    """Copy the outbox's verdict onto deliveries (the outbox is the record of what left)."""
    if not pairs:
        return
    found = {i: (st, err) for i, st, err in session.execute(
        select(OutboxMessage.id, OutboxMessage.state, OutboxMessage.last_error)
        .where(OutboxMessage.id.in_([o for _, o in pairs if o]))).all()}
    states = {i: st for i, (st, _) in found.items()}
    now = clock.now()
    sent = [d for d, o in pairs if states.get(o) == "sent"]
    dead = [(d, o) for d, o in pairs if states.get(o) == "dead"]
    for chunk in range(0, len(sent), 500):
        session.execute(update(Delivery).where(Delivery.id.in_(sent[chunk:chunk + 500]), Delivery.state == "sending")
                        .values(state="sent", sent_at=now))
    # Why, in words, per reason (a campaign hitting 43004 for 500 owners is one statement).
    by_reason: dict[str, list[int]] = {}
    for d, o in dead:
        by_reason.setdefault(describe_error(found[o][1]), []).append(d)
    for reason, ids in by_reason.items():
        session.execute(update(Delivery).where(Delivery.id.in_(ids), Delivery.state == "sending")
                        .values(state="failed", error=reason))


# --- into owners' groups: WeCom's company bulk send ------------------------------------------
#
# externalcontact/add_msg_template (chat_type group, sender = the group's staff owner,
# chat_id_list = the group) puts the notice in the owner's WeCom, ready to confirm with
# one tap. The delivery waits in `confirming` until get_groupmsg_send_result says it was
# sent (`track_group_msgs`, run by the pump). If the platform refuses the bulk send, the
# delivery falls back to the ready-to-send task (`group_task`, the sidebar), once.

GROUP_STATUS = {2: "客户已不是企业好友，未发送", 3: "该群已收到其他群发消息，未发送"}


def _send_group_msgs(campaign_id: int, mine) -> dict:
    """Create the bulk sends of a campaign's pending group deliveries (one call each)."""
    out = {"created": 0, "fallback": 0}
    while True:
        with session_scope() as s:  # claim one (committed before the call: never two tasks)
            d = s.scalar(select(Delivery).where(Delivery.campaign_id == campaign_id, Delivery.kind == "group_msg",
                                                Delivery.state == "pending", mine).order_by(Delivery.id).limit(1))
            if d is None:
                return out
            d.state, d.attempts = "sending", d.attempts + 1
            did, sender, payload = d.id, d.address, dict(d.payload or {})
        try:
            msgid = get_wecom_client().add_group_msg(sender, [payload["group_id"]], payload["text"])
        except PlatformError as exc:
            log.warning("campaign %s: bulk send into %s refused (%s); falling back to a task",
                        campaign_id, payload.get("group_id"), exc)
            with session_scope() as s:
                s.execute(update(Delivery).where(Delivery.id == did).values(
                    kind="group_task", state="pending",
                    error=f"企业群发未成功（{describe_error(_platform_error_text(exc))}），已改为待发任务"))
            out["fallback"] += 1
            continue
        with session_scope() as s:
            s.execute(update(Delivery).where(Delivery.id == did).values(
                state="confirming", payload={**payload, "msgid": msgid}, error=None))
        out["created"] += 1


def _platform_error_text(exc: Exception) -> str:
    code = getattr(exc, "errcode", None)
    return f"{code} {getattr(exc, 'errmsg', '')}" if code is not None else f"{type(exc).__name__}: {exc}"


def track_group_msgs(session: Session, now: datetime | None = None, max_age_hours: float = 72) -> dict:
    """Ask WeCom what each confirming bulk send did: sent (the owner tapped 发送), refused
    (why, in words), or still waiting; one not confirmed within `max_age_hours` fails."""
    now = now or clock.now()
    rows = list(session.scalars(select(Delivery).where(Delivery.kind == "group_msg",
                                                       Delivery.state == "confirming").limit(500)))
    out = {"sent": 0, "failed": 0, "waiting": 0}
    by_msg: dict[tuple[str, str], list[Delivery]] = {}
    for d in rows:
        by_msg.setdefault(((d.payload or {}).get("msgid", ""), d.address), []).append(d)
    for (msgid, sender), ds in by_msg.items():
        try:
            answer = get_wecom_client().get_groupmsg_send_result(msgid, sender)
        except PlatformError as exc:
            log.warning("group bulk send %s: result not read (%s)", msgid, exc)
            out["waiting"] += len(ds)
            continue
        status = {r.get("chat_id"): r for r in answer.get("send_list") or []}
        for d in ds:
            out[_settle_group_msg(session, d, status.get((d.payload or {}).get("group_id")) or {},
                                  now, max_age_hours)] += 1
    session.flush()
    return out


def _settle_group_msg(session: Session, d: Delivery, row: dict, now: datetime, max_age_hours: float) -> str:
    """One group's line of WeCom's answer onto its delivery: 'sent', 'failed' or 'waiting'."""
    code = int(row.get("status", 0) or 0)
    if code == 1:
        d.state = "sent"
        d.sent_at = datetime.fromtimestamp(row["send_time"], clock.CST) if row.get("send_time") else now
        return "sent"
    if code in GROUP_STATUS:
        d.state, d.error = "failed", GROUP_STATUS[code]
        return "failed"
    camp = session.get(Campaign, d.campaign_id)
    started = camp.started_at or camp.send_at
    if started and now - started > timedelta(hours=max_age_hours):
        d.state, d.error = "failed", "群主未在企业微信中确认发送"
        return "failed"
    return "waiting"


def recover_orphans(session: Session, r) -> dict:
    """For the pump: settle in-flight rows of runners that died (no live lease),
    well before the sender's lease lapses and the sweeper would retry them
    (on the Official Account a retry of a call that did arrive is a second copy)."""
    out = {}
    shards = max(1, int(get_schedule().campaign.get("shards", 1)))
    for camp in session.scalars(select(Campaign).where(Campaign.state == "sending")):
        for k in range(shards):
            key = keys.campaign_inflight(camp.id, k)
            if r.exists(keys.campaign_lock(camp.id, k)) or not r.scard(key):
                continue
            res = _recover(session, camp, [int(x) for x in r.smembers(key)])
            r.delete(key)
            if res:
                out[f"{camp.id}:{k}"] = res
    return out


def due_campaigns(session: Session, now: datetime) -> list[int]:
    """Campaigns the pump should (re)start now: due, unfinished, allowed at this hour."""
    rows = session.execute(select(Campaign.id, Campaign.emergency).where(
        Campaign.state.in_(("scheduled", "planned", "sending")), Campaign.send_at <= now)
        .order_by(Campaign.emergency.desc(), Campaign.send_at)).all()
    return [cid for cid, em in rows if may_send(now, em)]
