"""Every running obligation of RULES.md in one table (issue 15): a ticket's
O4-O11 clocks, a member service's O2/O3, a consultation's O1, and the calendar
obligations O12-O19 (one row per standing obligation, subject "community", or
per subject while it runs: "owner:3" in arrears, "home:7" before its warranty ends;
`due_at` is the next occurrence, `level` counts the occurrences fired).

One row = one clock on one subject ("ticket:12", "booking:3",
"application:2", "consultation:5:1") in one round: when it started, when it is
due, when it warns, when (and whether in time) it stopped, how far it was
escalated. `handlers/clocks/engine.py` is the only code that moves a row from
state to state; the policies (how long, who is told) are data
(`handlers/data/clocks.yaml`, `member_clocks.yaml`).

`TicketClock` and `ServiceClock` are views of the same table for one family
(single-table inheritance on `family`), for code that only wants its own.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamped

ACTIVE_STATES = ("running", "breached")


class Clock(Timestamped, Base):
    __tablename__ = "clocks"
    __table_args__ = (UniqueConstraint("subject", "clock", "round"), Index("ix_clocks_state_due", "state", "due_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    family: Mapped[str] = mapped_column(String(16))  # ticket / service: whose policies and messages
    subject: Mapped[str] = mapped_column(String(64))  # ticket:12 / booking:3 / application:2 / consultation:5:1
    clock: Mapped[str] = mapped_column(String(32))  # the policy's id (on_site, O2_review ...)
    rule: Mapped[str] = mapped_column(String(8), default="")  # O1 ... O20
    round: Mapped[int] = mapped_column(default=0)  # a reopened ticket runs its clocks again
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id"))
    team: Mapped[str | None] = mapped_column(String(32))
    assignee: Mapped[str | None] = mapped_column(String(256))  # staff userids, "a|b"
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    warn_at: Mapped[datetime | None]
    warned_at: Mapped[datetime | None]
    # running / breached (deadline passed, still running) / met / late (stopped after the
    # deadline; service clocks say breached_met, as their first records did) / cancelled
    state: Mapped[str] = mapped_column(String(16), default="running")
    breached_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    level: Mapped[int] = mapped_column(default=0)  # escalation steps taken
    next_step_at: Mapped[datetime | None]
    detail: Mapped[dict | None]
    # A calendar obligation's subject's date (a warranty's end, the first day in arrears;
    # migration 0015): what its rule counts from, and what tells a new round from this one.
    anchor: Mapped[date | None]

    __mapper_args__ = {"polymorphic_on": "family"}


class TicketClock(Clock):
    """A ticket's clock (family "ticket", subject "ticket:<id>")."""

    __mapper_args__ = {"polymorphic_identity": "ticket"}

    def __init__(self, **kw) -> None:
        if kw.get("ticket_id") is not None:
            kw.setdefault("subject", f"ticket:{kw['ticket_id']}")
        super().__init__(**kw)


class ServiceClock(Clock):
    """A member-service or consultation clock (family "service")."""

    __mapper_args__ = {"polymorphic_identity": "service"}


class CalendarClock(Clock):
    """A calendar obligation (family "calendar", O12-O19): recurring, no deadline."""

    __mapper_args__ = {"polymorphic_identity": "calendar"}
