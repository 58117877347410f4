"""Service clocks (O1 first response, O2 review / contact, O3 feedback) run on
the one clock engine (`handlers/clocks/`); their family is
`handlers/membership/clock_family.py`, their policies member_clocks.yaml.

`check_clocks` fires only this family's clocks (what `handlers.bookings.check_booking_clocks`
and `guanjia` membership commands call); the scheduler fires every family at once
with `handlers.clocks.check_due`.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from handlers.clocks import engine
from handlers.membership.clock_family import FAMILY
from handlers.message import Push


def check_clocks(session: Session, now: datetime) -> list[Push]:
    """Escalate every broken service clock, one step at a time (idempotent)."""
    return engine.check_due(session, now, families=(FAMILY.name,))
