"""The ticket family of the clock engine (RULES.md O4-O11): a ticket's clock
policies depend on its class and kind (clocks.yaml); roles come from
duty_roster.yaml; warnings are texts, escalations are cards with 接管, a
redispatch sends the card to the next person on duty; the story goes to the
ticket's events (O20).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ground.clock import CST
from handlers.clocks import ClockSpec, Step, engine
from handlers import privacy
from handlers.message import Push
from handlers.tickets import core
from handlers.tickets.policy import roster, spec_for
from store.models import Clock, Ticket


def _fmt(dt: datetime) -> str:
    return dt.astimezone(CST).strftime("%m-%d %H:%M")


def subject(ticket: Ticket) -> str:
    return f"ticket:{ticket.id}"


class TicketFamily:
    name = "ticket"
    late_state = "late"

    def policy(self, clock_id: str) -> ClockSpec:
        raise KeyError(f"ticket clocks start from a ticket's events (core.fire), not by name: {clock_id}")

    def spec(self, session: Session, row: Clock) -> ClockSpec | None:
        ticket = session.get(Ticket, row.ticket_id)
        return spec_for(ticket, row.clock) if ticket is not None else None

    def record(self, session: Session, row: Clock, action: str, now: datetime, **detail) -> None:
        ticket = session.get(Ticket, row.ticket_id)
        if action == "clock_breached":
            detail["holder"] = ticket.assignee
        if action == "clock_cancelled":
            core.record(session, ticket, "clock", action, now, clock=row.clock, **detail)
            return
        core.record(session, ticket, "clock", action, now, clock=row.clock, rule=row.rule, **detail)

    def auto_stop(self, session: Session, row: Clock) -> bool:
        return False

    def warn(self, session: Session, row: Clock, spec: ClockSpec, now: datetime) -> list[Push]:
        ticket = session.get(Ticket, row.ticket_id)
        to = core.recipient_of_holder(session, ticket, spec.holder)
        self.record(session, row, "clock_warned", now, to=to, due_at=row.due_at.isoformat())
        text = (f"⏰ 工单{ticket.number}【{core.class_label(ticket.priority)}】将于{_fmt(row.due_at)}超时："
                f"{spec.title}（{row.rule}）。内容：{privacy.excerpt(ticket.content, 40)}")
        return [core.staff_text(u, text, f"ticket:{ticket.id}:{row.clock}:{row.round}:warn:{u}"[:128], ticket,
                                priority=1) for u in to]

    def _people(self, ticket: Ticket, who: tuple[str, ...]) -> list[str]:
        r = roster()
        people = []
        for w in who:
            if w in ("supervisor", "manager"):
                people.append(r.escalation[w])
            elif w == "callback":
                people.append(r.callback_for(ticket.building))
            elif w == "assignee" and ticket.assignee:
                people.append(ticket.assignee)
        return list(dict.fromkeys(people))

    def escalate(self, session: Session, row: Clock, spec: ClockSpec, step: Step, now: datetime) -> list[Push] | None:
        ticket = session.get(Ticket, row.ticket_id)
        if "redispatch" in step.to:
            if ticket.state != "open":
                return None
            pushes = core.redispatch(session, ticket, now)
            if pushes is None:
                return None
            self.record(session, row, "clock_escalated", now, step="redispatch", level=row.level,
                        to=ticket.notified[-1])
            return pushes
        people = self._people(ticket, step.to)
        if not people:
            return None
        self.record(session, row, "clock_escalated", now, step="+".join(step.to), level=row.level,
                    to=people[0] if len(people) == 1 else people)
        late = int((now - row.due_at).total_seconds() // 60)
        holder = core.staff_name(session, ticket.assignee) if ticket.assignee else "无人接单"
        return [core.card_push(session, ticket, people, f"{ticket.number}c{row.id}l{row.level}",
                               f"超时升级：{ticket.number} {spec.title}", [("接管", "takeover", 1)],
                               desc=f"{row.rule} 时限{_fmt(row.due_at)}，已超{late}分钟 · 负责人{holder}")]


FAMILY = engine.register_family(TicketFamily())
