"""Membership (seed 000): spend ledger, tier history, upgrade applications,
sanctions, downgrade notices, member-service bookings with capacity and quota
counters. (Their O1-O3 clocks are rows of store/models/clocks.py.)"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.models.base import Base, Timestamped
from store.models.clocks import ServiceClock  # noqa: F401  (the clocks live in store/models/clocks.py)
from store.models.community import Owner


class OwnerRecord(Timestamped):
    """A membership record about one owner (tier change, application, sanction, notice): its
    key, the owner (indexed: every look-up is by owner) and, last, when it was made."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-2)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"), index=True, sort_order=-1)


class SpendEntry(Timestamped, Base):
    """One purchase counted toward tiers (facility use, paid services).
    Amounts in fen so 4,999.99 vs 5,000 yuan is exact."""

    __tablename__ = "member_spend"
    __table_args__ = (Index("ix_member_spend_owner_day", "owner_id", "spent_on"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"))
    amount_fen: Mapped[int]
    spent_on: Mapped[date]
    category: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(128))
    entered_by: Mapped[str | None] = mapped_column(String(64))


class TierChange(OwnerRecord, Base):
    """Every tier change with its basis (spend / tenure / contribution /
    downgrade_spend / breach / manual)."""

    __tablename__ = "member_tier_history"
    from_tier: Mapped[str] = mapped_column(String(16))
    to_tier: Mapped[str] = mapped_column(String(16))
    basis: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    effective_on: Mapped[date]


class MemberApplication(OwnerRecord, Base):
    """An owner's upgrade application: a staff task under the O2 review clock."""

    __tablename__ = "member_applications"
    from_tier: Mapped[str] = mapped_column(String(16))
    target_tier: Mapped[str] = mapped_column(String(16))
    basis: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending / approved / rejected
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[Owner] = relationship()


class MemberSanction(OwnerRecord, Base):
    """A rule breach (第十条): warn, suspend benefits until ends_at, or downgrade."""

    __tablename__ = "member_sanctions"
    action: Mapped[str] = mapped_column(String(16))  # warn / suspend / downgrade
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    lifted_at: Mapped[datetime | None]


class DowngradeNotice(OwnerRecord, Base):
    """Told in advance that the 12-month spend is below the keep threshold."""

    __tablename__ = "member_downgrade_notices"
    from_tier: Mapped[str] = mapped_column(String(16))
    to_tier: Mapped[str] = mapped_column(String(16))
    spend_fen: Mapped[int]
    due_on: Mapped[date]
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending / applied / cancelled
    closed_at: Mapped[datetime | None]


class Booking(Timestamped, Base):
    """A member-service booking. States: requested -> approved -> contacted ->
    done (-> rated); or rejected / cancelled."""

    __tablename__ = "bookings"
    __table_args__ = (Index("ix_bookings_owner_state", "owner_id", "state"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"))
    service: Mapped[str] = mapped_column(String(32))
    day: Mapped[date]
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    when_text: Mapped[str | None] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(128))
    tier: Mapped[str] = mapped_column(String(16))
    price_fen: Mapped[int | None]
    discount: Mapped[float] = mapped_column(default=1.0)
    quota_key: Mapped[str | None] = mapped_column(String(32))  # the period the quota was counted in
    team: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="requested")
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None]
    contacted_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    rating: Mapped[int | None]
    owner: Mapped[Owner] = relationship()


class ServiceCapacity(Base):
    """Bookings taken per service and day. Taking one is a conditional UPDATE
    (used < capacity) so two owners racing for the last one cannot both win;
    the CHECK is the database's own guard."""

    __tablename__ = "service_capacity"
    __table_args__ = (UniqueConstraint("service", "day"), CheckConstraint("used <= capacity", name="within"))
    id: Mapped[int] = mapped_column(primary_key=True)
    service: Mapped[str] = mapped_column(String(32))
    day: Mapped[date]
    capacity: Mapped[int]
    used: Mapped[int] = mapped_column(default=0)


class QuotaUsage(Base):
    """Entitlement uses per owner, service and period (2026, 2026-Q3, 2026-W38),
    taken with the same conditional UPDATE as capacity."""

    __tablename__ = "member_quota_usage"
    __table_args__ = (UniqueConstraint("owner_id", "service", "period"), CheckConstraint("used <= allowed", name="within"))
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"))
    service: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(16))
    allowed: Mapped[int]
    used: Mapped[int] = mapped_column(default=0)
