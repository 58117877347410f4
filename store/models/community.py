"""The community: buildings, homes, owners, staff, groups."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.models.base import Base, Timestamped


class Building(Base):
    __tablename__ = "buildings"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # e.g. "1栋"
    name: Mapped[str] = mapped_column(String(64))


class Home(Base):
    """A flat; `room` is the owner-facing label such as 1-1201."""

    __tablename__ = "homes"
    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"))
    room: Mapped[str] = mapped_column(String(32), unique=True)
    handover_date: Mapped[date | None]
    warranty_until: Mapped[date | None]
    building: Mapped[Building] = relationship()


class Owner(Timestamped, Base):
    __tablename__ = "owners"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))
    home_id: Mapped[int | None] = mapped_column(ForeignKey("homes.id"))
    # Platform identities: OA openid for private chats, WeCom external_userid in groups.
    openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    external_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    tier: Mapped[str] = mapped_column(String(16), default="普通")  # 普通 / 银卡 / 金卡
    tier_since: Mapped[date | None]
    move_in_date: Mapped[date | None]
    birthday: Mapped[date | None]
    fees_paid_until: Mapped[date | None]
    # Last time the owner wrote to the OA: the 48 h customer-service window.
    last_inbound_at: Mapped[datetime | None]
    home: Mapped[Home | None] = relationship()

    @property
    def room(self) -> str | None:
        return self.home.room if self.home else None


class Staff(Timestamped, Base):
    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), unique=True)  # WeCom userid
    name: Mapped[str] = mapped_column(String(64))
    team: Mapped[str] = mapped_column(String(32))  # customer_service / repair / security / cleaning / management
    role: Mapped[str] = mapped_column(String(16), default="staff")  # staff / supervisor / manager
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)


class Group(Timestamped, Base):
    """A WeCom customer group (VIP or building) or an internal app chat."""

    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # vip / building / staff
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    staff_admin_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    staff_admin: Mapped[Staff | None] = relationship()
    building: Mapped[Building | None] = relationship()


class GroupMember(Timestamped, Base):
    __tablename__ = "group_members"
    __table_args__ = (UniqueConstraint("group_id", "member_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"))
    member_id: Mapped[str] = mapped_column(String(64))  # external_userid or staff userid
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id"))
    role: Mapped[str] = mapped_column(String(16), default="member")  # member / admin / staff
    state: Mapped[str] = mapped_column(String(16), default="active")  # active / left / removed
    group: Mapped[Group] = relationship()
    owner: Mapped[Owner | None] = relationship()
