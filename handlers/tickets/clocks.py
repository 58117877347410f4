"""The tickets' minute job: their clocks (on the one clock engine,
handlers/clocks/; the family is handlers/tickets/clock_family.py) and the
surveys nobody answered.

`check_clocks(session, now)` fires only the ticket family's clocks (tests and
`guanjia` commands that look at tickets alone); the scheduler's `deadlines` job
fires every family with `handlers.clocks.check_due` and then `close_unanswered`.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.clocks import engine
from handlers.message import Push
from handlers.tickets import core
from handlers.tickets.clock_family import FAMILY
from handlers.tickets.policy import policy
from store.models import Ticket


def check_clocks(session: Session, now: datetime) -> list[Push]:
    """Warnings, breaches and escalation steps of ticket clocks due at `now`; returns the pushes."""
    pushes = engine.check_due(session, now, families=(FAMILY.name,))
    return pushes + close_unanswered(session, now)


def close_unanswered(session: Session, now: datetime) -> list[Push]:
    """A survey nobody answered closes after its time; recorded as such (O20)."""
    limit = now - timedelta(hours=policy().survey_ttl_hours)
    for t in session.scalars(select(Ticket).where(Ticket.state == "completed", Ticket.completed_at <= limit)).all():
        t.state, t.closed_at = "closed", now
        core.fire(session, t, "closed", "clock", now, reason="survey unanswered")
    session.flush()
    return []
