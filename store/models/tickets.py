"""Complaints and repairs: tickets, their story (events) and their clocks.

RULES.md O20: every change is a ticket event (who, when, what). The clocks
(O4-O11) are rows of the one clock table (store/models/clocks.py).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamped
from store.models.clocks import TicketClock  # noqa: F401  (the clocks live in store/models/clocks.py)


class Ticket(Timestamped, Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_state", "state"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # complaint / repair
    priority: Mapped[str] = mapped_column(String(16))  # urgent / important / general
    category: Mapped[str] = mapped_column(String(32))
    team: Mapped[str] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(Text)
    # waiting_home (owner not bound yet) / open / accepted / on_the_way / on_site /
    # completed / reopened / closed
    state: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(64))  # openid / external_userid of who reported it
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id"))
    room: Mapped[str | None] = mapped_column(String(32))
    building: Mapped[str | None] = mapped_column(String(32))
    contact_name: Mapped[str | None] = mapped_column(String(64))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    assignee: Mapped[str | None] = mapped_column(String(64))  # staff userid, first to accept (O10)
    # Card version: every new card gets task_id T<id>v<version>, unique per app as WeCom requires.
    version: Mapped[int] = mapped_column(default=0)
    notified: Mapped[list] = mapped_column(default=list)  # staff userids the current card went to
    accepted_at: Mapped[datetime | None]
    on_site_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    result_sent_at: Mapped[datetime | None]
    called_back_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    result_note: Mapped[str | None] = mapped_column(Text)
    survey_score: Mapped[int | None]
    survey_comment: Mapped[str | None] = mapped_column(Text)
    reopen_count: Mapped[int] = mapped_column(default=0)
    nudges: Mapped[int] = mapped_column(default=0)

    @property
    def number(self) -> str:
        return f"T{self.id}"


class TicketEvent(Base):
    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket", "ticket_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))  # staff userid / owner openid / "bot" / "clock"
    action: Mapped[str] = mapped_column(String(32))  # created / accepted / ... / clock_started / clock_warned ...
    detail: Mapped[dict] = mapped_column(default=dict)
