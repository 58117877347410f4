"""Internal staff groups the app creates itself (appchat): unlike customer
groups, the API can post into them and remove members directly (PLATFORM.md),
so nothing here goes through a staff admin."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ground import ports
from handlers.message import Push
from store.models import AuditLog, Group, GroupMember, Staff

log = logging.getLogger(__name__)


def create_staff_group(session: Session, now: datetime, name: str, owner: str, userids: list[str],
                       chat_id: str | None = None) -> Group:
    """appchat/create (the staff-chats port), then the group and its members in the registry."""
    members = list(dict.fromkeys([owner, *userids]))
    chat_id = ports.staff_chats().create(name, owner, members, chat_id)
    owner_row = session.scalar(select(Staff).where(Staff.userid == owner))
    group = Group(chat_id=chat_id, name=name, kind="staff", staff_admin_id=owner_row.id if owner_row else None,
                  created_at=now)
    session.add(group)
    session.flush()
    for uid in members:
        session.add(GroupMember(group_id=group.id, member_id=uid, role="staff", created_at=now))
    session.add(AuditLog(actor=owner, action="staff_group.create", target=chat_id,
                         detail={"members": len(members)}, created_at=now))
    return group


def post(chat_id: str, text: str, dedup_key: str | None = None) -> Push:
    """A text for the staff group, sent through the outbox (appchat/send)."""
    return Push(channel="wecom", recipient=chat_id, kind="appchat", payload={"msgtype": "text", "content": text},
                dedup_key=dedup_key, priority=3, source=f"staff_group:{chat_id}")


def remove_member(session: Session, now: datetime, group: Group, userid: str, actor: str) -> None:
    """appchat/update del_user_list (the staff-chats port); raises ports.PlatformError on refusal."""
    ports.staff_chats().remove_members(group.chat_id, [userid])
    row = session.scalar(select(GroupMember).where(GroupMember.group_id == group.id, GroupMember.member_id == userid))
    if row is not None:
        row.state = "removed"
    session.add(AuditLog(actor=actor, action="staff_group.remove", target=group.chat_id, detail={"member": userid},
                         created_at=now))
