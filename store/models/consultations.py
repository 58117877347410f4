"""Consultations (a person behind every handoff) and what owners send with a
ticket (photos, voice, location).

A consultation is one owner's case while a person owes them an answer: the
owner's words, the conversation around it, who picked it up, the O1 clock
(a `clocks` row, family service, subject "consultation:<id>:<round>") and every reply.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from store.models.base import Base, Timestamped


class Consultation(Timestamped, Base):
    __tablename__ = "consultations"
    __table_args__ = (Index("ix_consultations_state", "state"), Index("ix_consultations_sender", "sender"))
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id"))
    sender: Mapped[str] = mapped_column(String(64))  # the owner's openid
    channel: Mapped[str] = mapped_column(String(16), default="mp")
    # waiting (a person owes an answer) / answered (replied, still open) / closed
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    title: Mapped[str] = mapped_column(String(80))  # what the owner asked, for cards and lists
    question: Mapped[str] = mapped_column(Text)  # the owner's own words that opened it
    topic: Mapped[str] = mapped_column(String(32), default="人工咨询")
    recipients: Mapped[str | None] = mapped_column(String(256))  # who got the card, "a|b"
    holder: Mapped[str | None] = mapped_column(String(64))  # staff userid who picked it up
    picked_at: Mapped[datetime | None]
    round: Mapped[int] = mapped_column(default=1)  # a new question after an answer runs O1 again
    last_owner_at: Mapped[datetime | None]
    last_reply_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(64))

    @property
    def number(self) -> str:
        return f"C{self.id}"


class ConsultationEntry(Base):
    """One line of the case: the owner's words, the bot's answer, a staff reply, a note."""

    __tablename__ = "consultation_entries"
    __table_args__ = (Index("ix_consultation_entries_case", "consultation_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"))
    at: Mapped[datetime]
    author_kind: Mapped[str] = mapped_column(String(16))  # owner / bot / staff / system
    author: Mapped[str] = mapped_column(String(64))  # openid / staff userid / "bot"
    text: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(default=dict)  # e.g. {"via": "wecom", "delivery": "text"}


class TicketMedia(Base):
    """A photo, voice note or location an owner sent about a ticket. The media
    itself is fetched once through the platform's media API (its ids expire
    after 3 days) and kept here."""

    __tablename__ = "ticket_media"
    __table_args__ = (Index("ix_ticket_media_ticket", "ticket_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(16))  # image / voice / location
    channel: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    media_id: Mapped[str | None] = mapped_column(String(128))
    pic_url: Mapped[str | None] = mapped_column(String(512))
    # pending (not fetched yet) / fetched / failed / none (nothing to fetch: a location)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    content_type: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None]
    content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    error: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    label: Mapped[str | None] = mapped_column(String(256))  # a location's address
