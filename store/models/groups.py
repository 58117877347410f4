"""Customer groups: moderation cases (the strikes), admissions, the message
archive cursor, suggested replies for staff admins, announcements."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamped


class ModerationCase(Timestamped, Base):
    """One step of the ladder for one member of one group: a strike, the card
    sent to the staff admin and what became of it (kept for appeals).

    `evidence` is the message with personal data masked; the original stays in
    the inbox row (`inbox_id`), inside the bot."""

    __tablename__ = "mod_cases"
    __table_args__ = (Index("ix_mod_cases_member", "group_chat_id", "member_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    group_chat_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str] = mapped_column(String(64))
    violation: Mapped[str] = mapped_column(String(16))  # ad / insult / privacy / illegal / muted_speech / manual
    step: Mapped[str] = mapped_column(String(16))  # warn / mute / remove
    strikes: Mapped[int] = mapped_column(default=1)  # weight this case adds to the member's count
    strike_total: Mapped[int] = mapped_column(default=1)  # active strikes after this case
    source: Mapped[str] = mapped_column(String(16), default="auto")  # auto / command
    actor: Mapped[str | None] = mapped_column(String(64))  # who issued a command
    why: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    warning_text: Mapped[str | None] = mapped_column(Text)
    msg_id: Mapped[str | None] = mapped_column(String(128))
    inbox_id: Mapped[int | None]
    mute_until: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="open")  # open / done / reversed / lifted
    false_positive: Mapped[bool] = mapped_column(default=False)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    response_code: Mapped[str | None] = mapped_column(String(128))  # for update_template_card


class GroupAdmission(Timestamped, Base):
    """A joiner checked against the entry rules; pending ones wait for the staff admin."""

    __tablename__ = "group_admissions"
    id: Mapped[int] = mapped_column(primary_key=True)
    group_chat_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[int | None]
    decision: Mapped[str] = mapped_column(String(32))  # admitted / pending / admitted_by_staff / removed
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    response_code: Mapped[str | None] = mapped_column(String(128))


class ArchiveCursor(Base):
    """The last message-archive sequence number fully accepted, per source."""

    __tablename__ = "archive_cursor"
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime | None]


class GroupSuggestion(Timestamped, Base):
    """A reply the bot would give in a customer group, waiting for the staff
    admin to send it from the sidebar (no bot can post there)."""

    __tablename__ = "group_suggestions"
    __table_args__ = (Index("ix_group_suggestions_staff_state", "staff_userid", "state"),
                      UniqueConstraint("dedup_key"))
    id: Mapped[int] = mapped_column(primary_key=True)
    group_chat_id: Mapped[str] = mapped_column(String(64))
    staff_userid: Mapped[str] = mapped_column(String(64))
    reply_to: Mapped[str | None] = mapped_column(String(64))
    question: Mapped[str | None] = mapped_column(Text)  # masked
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending / sent / dismissed
    sent_at: Mapped[datetime | None]
    dedup_key: Mapped[str | None] = mapped_column(String(128))


class GroupAnnouncement(Timestamped, Base):
    """`/公告`: a notice for the groups of a building (or all), now or later."""

    __tablename__ = "group_announcements"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    building: Mapped[str | None] = mapped_column(String(32))
    send_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled / handed_out / cancelled
    handed_out_at: Mapped[datetime | None]
