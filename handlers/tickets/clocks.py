"""The minute job: warn before a clock breaks, escalate when it has.

`check_clocks(session, now)` is called every minute by the scheduler. It is
idempotent: each warning and each ladder step is recorded on the clock row
(warned_at, level) in the same transaction as the ticket event, and every push
carries a dedup key (`ticket:<id>:<clock>:<round>:warn|L<n>`), so a re-run or a
retry produces nothing twice.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ground.clock import CST
from handlers import privacy
from handlers.message import Push
from handlers.tickets import core
from handlers.tickets.policy import policy, roster
from store.models import Ticket, TicketClock

log = logging.getLogger(__name__)


def _fmt(dt: datetime) -> str:
    return dt.astimezone(CST).strftime("%m-%d %H:%M")


def check_clocks(session: Session, now: datetime) -> list[Push]:
    """Warnings, breaches and escalation steps due at `now`; returns the pushes."""
    pushes: list[Push] = []
    rows = session.scalars(select(TicketClock).where(or_(
        and_(TicketClock.state == "running", TicketClock.due_at <= now),
        and_(TicketClock.state == "running", TicketClock.warn_at <= now, TicketClock.warned_at.is_(None)),
        and_(TicketClock.state == "breached", TicketClock.next_step_at <= now),
    )).order_by(TicketClock.due_at, TicketClock.id)).all()
    for row in rows:
        ticket = session.get(Ticket, row.ticket_id)
        spec = core.spec_for(ticket, row.clock)
        if spec is None:  # the policy changed under a running clock
            row.state, row.stopped_at = "cancelled", now
            core.record(session, ticket, "clock", "clock_cancelled", now, clock=row.clock, reason="not in policy")
            continue
        if row.state == "running" and row.due_at <= now:
            pushes += _breach(session, ticket, row, spec, now)
        elif row.state == "running":
            pushes += _warn(session, ticket, row, spec, now)
        else:
            pushes += _step(session, ticket, row, spec, now)
    pushes += _close_unanswered(session, now)
    session.flush()
    return pushes


def _warn(session: Session, ticket: Ticket, row: TicketClock, spec, now: datetime) -> list[Push]:
    row.warned_at = now
    to = core.recipient_of_holder(session, ticket, spec.holder)
    core.record(session, ticket, "clock", "clock_warned", now, clock=row.clock, rule=row.rule, to=to,
                due_at=row.due_at.isoformat())
    text = (f"⏰ 工单{ticket.number}【{core.class_label(ticket.priority)}】将于{_fmt(row.due_at)}超时："
            f"{spec.title}（{row.rule}）。内容：{privacy.excerpt(ticket.content, 40)}")
    return [core.staff_text(u, text, f"ticket:{ticket.id}:{row.clock}:{row.round}:warn:{u}"[:128], ticket, priority=1)
            for u in to]


def _breach(session: Session, ticket: Ticket, row: TicketClock, spec, now: datetime) -> list[Push]:
    row.state, row.breached_at = "breached", now
    core.record(session, ticket, "clock", "clock_breached", now, clock=row.clock, rule=row.rule,
                due_at=row.due_at.isoformat(), holder=ticket.assignee)
    return _step(session, ticket, row, spec, now)


def _step(session: Session, ticket: Ticket, row: TicketClock, spec, now: datetime) -> list[Push]:
    """The next rung of the ladder; a redispatch with nobody left falls through to the next rung."""
    while row.level < len(spec.ladder):
        step = spec.ladder[row.level]
        row.level += 1
        row.next_step_at = now + timedelta(minutes=spec.step_minutes) if row.level < len(spec.ladder) else None
        if step == "redispatch":
            if ticket.state != "open":
                continue
            pushes = core.redispatch(session, ticket, now)
            if pushes is None:
                continue
            core.record(session, ticket, "clock", "clock_escalated", now, clock=row.clock, rule=row.rule,
                        step=step, level=row.level, to=ticket.notified[-1])
            return pushes
        to = roster().escalation[step]
        core.record(session, ticket, "clock", "clock_escalated", now, clock=row.clock, rule=row.rule,
                    step=step, level=row.level, to=to)
        late = int((now - row.due_at).total_seconds() // 60)
        holder = core.staff_name(session, ticket.assignee) if ticket.assignee else "无人接单"
        buttons = [("接管", "takeover", 1)]
        return [core.card_push(session, ticket, [to], f"{ticket.number}c{row.id}l{row.level}",
                               f"超时升级：{ticket.number} {spec.title}", buttons,
                               desc=f"{row.rule} 时限{_fmt(row.due_at)}，已超{late}分钟 · 负责人{holder}")]
    row.next_step_at = None
    return []


def _close_unanswered(session: Session, now: datetime) -> list[Push]:
    """A survey nobody answered closes after its time; recorded as such (O20)."""
    limit = now - timedelta(hours=policy().survey_ttl_hours)
    for t in session.scalars(select(Ticket).where(Ticket.state == "completed", Ticket.completed_at <= limit)).all():
        t.state, t.closed_at = "closed", now
        core.fire(session, t, "closed", "clock", now, reason="survey unanswered")
    return []
