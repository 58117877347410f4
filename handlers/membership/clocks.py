"""Service clocks of seed 000 (O1 first response, O2 review / contact, O3
feedback): start, stop, and escalate when broken.

A clock is a `ServiceClock` row: the record of when it started, when it was
due, when (and whether in time) it stopped, and each escalation step taken.
`check_clocks` is idempotent: a step is taken once (its level is stored and
its push carries a dedup key), so the scheduler may run it as often as it likes.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ground.clock import CST
from handlers.membership.notify import by_role, clock_config, staff_text
from handlers.message import Push
from store.models import AuditLog, OutboxMessage, ServiceClock


def start_clock(session: Session, subject: str, clock: str, now: datetime, *, owner_id: int | None = None,
                team: str | None = None, assignee: str | None = None, detail: dict | None = None) -> ServiceClock:
    """Start `clock` on `subject` (once: starting it again returns the running row)."""
    existing = session.scalar(select(ServiceClock).where(ServiceClock.subject == subject, ServiceClock.clock == clock))
    if existing is not None:
        return existing
    minutes = clock_config()["clocks"][clock]["minutes"]
    row = ServiceClock(subject=subject, clock=clock, owner_id=owner_id, team=team, assignee=assignee,
                       started_at=now, due_at=now + timedelta(minutes=minutes), detail=detail or {})
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent start won: use its row
        return session.scalar(select(ServiceClock).where(ServiceClock.subject == subject, ServiceClock.clock == clock))
    return row


def stop_clock(session: Session, subject: str, clock: str, now: datetime, by: str | None = None) -> ServiceClock | None:
    """Stop a running clock: `met` in time, `breached_met` when late."""
    row = session.scalar(select(ServiceClock).where(ServiceClock.subject == subject, ServiceClock.clock == clock))
    if row is None or row.state != "running":
        return row
    row.stopped_at = now
    row.state = "met" if now <= row.due_at else "breached_met"
    if row.state == "breached_met" and row.breached_at is None:
        row.breached_at = row.due_at
    row.detail = {**(row.detail or {}), "stopped_by": by}
    session.flush()
    return row


def cancel_clocks(session: Session, subject: str, now: datetime) -> None:
    for row in session.scalars(select(ServiceClock).where(ServiceClock.subject == subject,
                                                          ServiceClock.state == "running")):
        row.state, row.stopped_at = "cancelled", now
    session.flush()


def _auto_stop_o3(session: Session, row: ServiceClock) -> bool:
    """O3 is met when the owner's feedback message actually went out (the
    outbox row is sent), not when it was merely queued."""
    key = (row.detail or {}).get("outbox_dedup")
    if not key:
        return False
    sent = session.scalar(select(OutboxMessage).where(OutboxMessage.dedup_key == key, OutboxMessage.state == "sent"))
    if sent is None or sent.sent_at is None:
        return False
    row.stopped_at = sent.sent_at
    row.state = "met" if sent.sent_at <= row.due_at else "breached_met"
    if row.state == "breached_met":
        row.breached_at = row.breached_at or row.due_at
    return True


def check_clocks(session: Session, now: datetime) -> list[Push]:
    """Escalate every running clock past its deadline, one step at a time."""
    cfg = clock_config()
    steps = cfg.get("escalation") or []
    pushes: list[Push] = []
    due = list(session.scalars(select(ServiceClock).where(ServiceClock.state == "running",
                                                          ServiceClock.due_at <= now).order_by(ServiceClock.id)))
    for row in due:
        if row.clock == "O3" and _auto_stop_o3(session, row):
            continue
        spec = cfg["clocks"].get(row.clock, {})
        for i, step in enumerate(steps):
            if i < row.level or now < row.due_at + timedelta(minutes=step["after_minutes"]):
                continue
            if row.breached_at is None:
                row.breached_at = row.due_at
            late = int((now - row.due_at).total_seconds() // 60)
            text = (f"【超时{'升级' if i else '提醒'}】{spec.get('name', row.clock)}（{row.clock}）已超时{late}分钟："
                    f"{(row.detail or {}).get('title', row.subject)}。规定：{spec.get('rule', '')}。"
                    f"截止 {row.due_at.astimezone(CST):%m-%d %H:%M}，请立即处理。")
            to: list[str] = []
            for who in step["to"]:
                if who == "assignee" and row.assignee:
                    to.extend(row.assignee.split("|"))
                elif who in ("supervisor", "manager"):
                    to.extend(s.userid for s in by_role(session, who, row.team))
            to = list(dict.fromkeys(to))
            if to:
                pushes.append(staff_text("|".join(to), text, f"memclock:{row.id}:L{i + 1}",
                                         source=f"clock:{row.subject}", priority=1))
            session.add(AuditLog(actor="system", action="clock_escalated", target=row.subject,
                                 detail={"clock": row.clock, "level": i + 1, "to": to, "due_at": row.due_at.isoformat()}))
            row.level = i + 1
    session.flush()
    return pushes
