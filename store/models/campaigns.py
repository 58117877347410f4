"""Scheduler capability: campaigns (fan-out with one delivery row per
recipient), job runs (each scheduled job once per slot), reminders (the record
that a follow-up clock fired), group bulk-send usage (monthly cap per group)
and survey answers."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamped


class Campaign(Timestamped, Base):
    """One message to many: an announcement, a greeting, monthly bills...

    state: scheduled -> planned (deliveries written) -> sending -> done, or
    cancelled (only before anything went out)."""

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("dedup_key"), Index("ix_campaigns_state_at", "state", "send_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # announcement / greeting / bill / survey / forum / census ...
    title: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    target: Mapped[dict]  # {"everyone": true} | {"groups": [...]} | {"buildings": [...]} | {"tiers": [...]} | {"owners": [ids]} | {"staff": [...]}
    send_at: Mapped[datetime]
    emergency: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    created_by: Mapped[str] = mapped_column(String(64))
    dedup_key: Mapped[str | None] = mapped_column(String(128))  # a job re-run cannot create it twice
    template_id: Mapped[str | None] = mapped_column(String(64))
    planned_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    stats: Mapped[dict | None]


class Delivery(Base):
    """One recipient of a campaign. The unique key is what makes a resumed
    campaign skip everyone already served."""

    __tablename__ = "campaign_deliveries"
    __table_args__ = (UniqueConstraint("campaign_id", "recipient_key"),
                      Index("ix_campaign_deliveries_campaign_state", "campaign_id", "state"))
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    recipient_key: Mapped[str] = mapped_column(String(96))  # owner:12 / staff:kefu / group:wr_1
    channel: Mapped[str] = mapped_column(String(16))  # mp / wecom
    kind: Mapped[str] = mapped_column(String(32))  # text / template / group_task
    address: Mapped[str] = mapped_column(String(128))  # openid / userid
    payload: Mapped[dict | None]  # per-recipient text (bills); None = campaign text
    # pending -> sending -> sent | failed | skipped (cap reached, no address) | unknown (crash in flight)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    outbox_id: Mapped[int | None]
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class JobRun(Timestamped, Base):
    """A scheduled job fired for this slot. The unique key is how two
    scheduler processes (or a leader hand-over) never run a job twice."""

    __tablename__ = "scheduler_job_runs"
    __table_args__ = (UniqueConstraint("job", "slot"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    slot: Mapped[str] = mapped_column(String(32))
    host: Mapped[str | None] = mapped_column(String(128))
    rq_job_id: Mapped[str | None] = mapped_column(String(128))


class Reminder(Timestamped, Base):
    """A follow-up clock fired (O12, O14, O15, O16, birthdays...): what, for
    whom, for which period. Unique, so a re-run records nothing new."""

    __tablename__ = "scheduler_reminders"
    __table_args__ = (UniqueConstraint("rule", "subject", "period"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(16))  # O12 / O13 / O14 / O15 / O16 / O17 / O18
    subject: Mapped[str] = mapped_column(String(64))  # owner:3 / home:7 / community
    period: Mapped[str] = mapped_column(String(32))  # 2026-10 / 2026Q4 / 2026-10-01#2
    detail: Mapped[dict | None]


class GroupBulkSend(Timestamped, Base):
    """A bulk send to a customer group, counted against the month's cap
    (as many as the month has days, PLATFORM.md)."""

    __tablename__ = "group_bulk_sends"
    __table_args__ = (UniqueConstraint("group_id", "campaign_id"), Index("ix_group_bulk_sends_month", "group_id", "month"))
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"))
    month: Mapped[str] = mapped_column(String(7))  # 2026-09 (Shanghai)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))


class SurveyAnswer(Timestamped, Base):
    """One owner's answer to one periodic survey (O17)."""

    __tablename__ = "survey_answers"
    __table_args__ = (UniqueConstraint("survey", "period", "owner_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    survey: Mapped[str] = mapped_column(String(32))  # satisfaction
    period: Mapped[str] = mapped_column(String(16))  # 2026Q3
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"))
    building_code: Mapped[str | None] = mapped_column(String(32))  # as it was when answered
    tier: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    answered_on: Mapped[date | None]
