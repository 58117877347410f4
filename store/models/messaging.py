"""Inbox (every accepted message), outbox (every outbound one), conversations, audit."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamped


class InboxMessage(Timestamped, Base):
    """Written before the HTTP answer; the unique key makes a retry a no-op
    even if the Redis dedup key was lost."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "dedup_key"),
        Index("ix_inbox_state_created", "state", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # mp / wecom / archive / cli
    dedup_key: Mapped[str] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))  # text / event / ...
    payload: Mapped[dict]  # the normalized message, as JSON
    state: Mapped[str] = mapped_column(String(16), default="received")  # received / queued / done / failed
    attempts: Mapped[int] = mapped_column(default=0)
    queued_at: Mapped[datetime | None]
    handled_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]  # when a worker last claimed it: its lease (bot/sweeper.py)
    reply_mode: Mapped[str | None] = mapped_column(String(16))  # pending / passive / pushed / none
    replies: Mapped[list | None]  # the texts for the sender, kept until delivered one way or the other
    error: Mapped[str | None] = mapped_column(Text)


class OutboxMessage(Timestamped, Base):
    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedup_key"),
        Index("ix_outbox_state_next", "state", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # mp / wecom
    kind: Mapped[str] = mapped_column(String(32))  # text / template / template_card / update_card / markdown / textcard / appchat / group_task
    recipient: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict]
    # Optional idempotency key (campaign delivery, clock reminder) so a retry of
    # the producer cannot create a second message.
    dedup_key: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued / sent / failed / dead
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(default=5)  # lower is sooner; emergencies 0
    source: Mapped[str | None] = mapped_column(String(64))  # what produced it (ticket:12, campaign:3 ...)


class Conversation(Base):
    """A multi-turn exchange in progress (booking slots, binding a home...).

    One per sender and chat; the owning handler gets the next message first.
    """

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("sender", "chat"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(64))
    chat: Mapped[str] = mapped_column(String(64))
    handler: Mapped[str] = mapped_column(String(32))
    state: Mapped[dict]
    expires_at: Mapped[datetime]


class AuditLog(Timestamped, Base):
    """Who did what: commands, owner-record look-ups, manual changes."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict | None]
