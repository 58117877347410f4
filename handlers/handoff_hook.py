"""The one place a capability hands an owner's question to a person.

The consultations capability installs how (`set_handoff`, at import): a case with the
O1 clock and a card for the owner's agent. Membership and understanding hand off
through here, so they need not import consultations, which builds on membership's
service clocks (no circle between the packages).
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from sqlalchemy.orm import Session

from handlers.message import Message, Push
from store.models import Owner

Handoff = Callable[[Session, Message, "Owner | None", datetime, str], "tuple[str, list[Push]]"]

_handoff: Handoff | None = None


def set_handoff(fn: Handoff) -> None:
    global _handoff
    _handoff = fn


def hand_off(session: Session, owner: Owner, text: str, now: datetime, topic: str) -> tuple[str, list[Push]]:
    """The owner's `text` goes to a person; returns the reply for the owner and the pushes."""
    if _handoff is None:
        raise RuntimeError("no handoff is installed: handlers.consultations (in handlers.CAPABILITIES) installs it")
    msg = Message(channel="mp", sender=owner.openid or f"owner:{owner.id}", chat="private", text=text)
    return _handoff(session, msg, owner, now, topic)
