"""Groups and moderation for the console and API: the strikes (moderation
cases) and what waits for a staff admin's decision."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console import labels
from bot.console.queries import Item, row_dict, where_given
from handlers import scope
from store.models import Group, GroupAdmission, ModerationCase, Owner


def moderation_waiting(session: Session, viewer=None):
    """Open moderation cases and pending admissions (the cards staff admins have not decided),
    of the groups `viewer` may see (handlers/scope.py; None: all)."""
    def scoped(stmt, column):
        return stmt if viewer is None else scope.scoped_by_group(stmt, column, viewer)

    names = {g.chat_id: g.name for g in session.scalars(select(Group))}
    who = _member_names(session)
    items = []
    for c in session.scalars(scoped(select(ModerationCase).where(ModerationCase.status == "open"),
                                    ModerationCase.group_chat_id).order_by(ModerationCase.id).limit(30)):
        items.append(Item(f"{names.get(c.group_chat_id, '业主群')} · {who.get(c.member_id, '群成员')} · "
                          f"{labels.word('violations', c.violation)} → {labels.word('moderation_steps', c.step)}"
                          f"（第{c.strike_total}次）", labels.fmt_time(c.created_at), c.id, kind="case"))
    pending = scoped(select(GroupAdmission).where(GroupAdmission.decision == "pending"),
                     GroupAdmission.group_chat_id).order_by(GroupAdmission.id).limit(30)
    for a in session.scalars(pending):
        items.append(Item(f"{names.get(a.group_chat_id, '业主群')} · 入群待审核 · {who.get(a.member_id, '新成员')}",
                          labels.fmt_time(a.created_at), a.id))
    return items


def _member_names(session: Session) -> dict[str, str]:
    # Room + name: what a staff admin needs to recognise a member, no phone.
    return {o.external_userid: f"{o.room or ''} {o.name}".strip()
            for o in session.scalars(select(Owner).where(Owner.external_userid.is_not(None)))}


def strikes(session: Session, group: str | None = None, member: str | None = None, status: str | None = None,
            limit: int = 100, viewer=None) -> list[dict] | None:
    """Moderation cases, newest first, of the groups `viewer` may see (None: all)."""
    stmt = where_given(select(ModerationCase).order_by(ModerationCase.id.desc()),
                       (ModerationCase.group_chat_id, group), (ModerationCase.member_id, member),
                       (ModerationCase.status, status))
    if viewer is not None:
        stmt = scope.scoped_by_group(stmt, ModerationCase.group_chat_id, viewer)
    who = _member_names(session)
    out = []
    for c in session.scalars(stmt.limit(limit)):
        d = row_dict(c, ["id", "group_chat_id", "member_id", "violation", "step", "strikes", "strike_total",
                         "source", "actor", "why", "evidence", "mute_until", "status", "false_positive",
                         "decided_by", "decided_at", "created_at"])
        d["member"] = who.get(c.member_id)
        out.append(d)
    return out
