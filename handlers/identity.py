"""Who is writing: an owner, a staff member, a group admin. One place decides."""
from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from handlers.message import Message
from store.models import Group, GroupMember, Owner, Staff


# Asked for nearly every message: built once, not per call.
_OWNER_BY_OPENID = select(Owner).where(Owner.openid == bindparam("sender"))
_OWNER_BY_EXTERNAL_ID = select(Owner).where(Owner.external_userid == bindparam("sender"))
_ACTIVE_STAFF = select(Staff).where(Staff.userid == bindparam("userid"), Staff.active.is_(True))


def find_owner(session: Session, msg: Message) -> Owner | None:
    stmt = _OWNER_BY_OPENID if msg.channel == "mp" else _OWNER_BY_EXTERNAL_ID
    return session.scalar(stmt, {"sender": msg.sender})


def find_staff(session: Session, userid: str) -> Staff | None:
    return session.scalar(_ACTIVE_STAFF, {"userid": userid})


def resolve_role(session: Session, msg: Message) -> str:
    """owner / admin / staff, from the store (never from what the message claims)."""
    if msg.channel == "wecom" or msg.chat == "staff":
        return "staff" if find_staff(session, msg.sender) else "owner"
    if msg.group_id:
        if find_staff(session, msg.sender):
            return "admin"
        member = session.scalar(select(GroupMember).join(Group).where(
            Group.chat_id == msg.group_id, GroupMember.member_id == msg.sender))
        if member and member.role in ("admin", "staff"):
            return "admin"
    return "owner"
