"""The group registry kept in step with WeCom's `change_external_chat`
events, and the admission check for joiners (RULES.md, VIP group).

The event says only that members came or went (UpdateDetail add_member /
del_member, MemChangeCnt), never who: the member list comes from
`externalcontact/groupchat/get` through the group-directory port (ground/ports.py), and the store is
diffed against it.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ground import ports
from ground import rules as rulefiles
from ground.clock import CST
from handlers.groups import ladder
from handlers.groups.capability import capability
from handlers.identity import find_owner
from handlers.message import Context, Message, Outcome, Push
from store.models import AuditLog, Group, GroupMember, Owner, Staff
from store.models.groups import GroupAdmission

log = logging.getLogger(__name__)
DATA_FILE = Path(__file__).with_name("data") / "admission.yaml"


_KIND = rulefiles.Record(require_owner=rulefiles.Bool(), require_fees_paid=rulefiles.Bool())
ADMISSION = rulefiles.RuleFile(DATA_FILE, schema=rulefiles.Record(vip=_KIND, building=_KIND))


def admission_rules() -> dict[str, Any]:
    return ADMISSION.get()


# --- admission -----------------------------------------------------------------------------------

def check_admission(session: Session, group: Group, member_id: str, now: datetime) -> tuple[Owner | None, list[str]]:
    """The owner record matched and the reasons (if any) the joiner does not qualify."""
    rules = admission_rules().get(group.kind) or admission_rules()["building"]
    owner = session.scalar(select(Owner).where(Owner.external_userid == member_id))
    reasons: list[str] = []
    if owner is None:
        if rules.get("require_owner"):
            reasons.append("未匹配到业主档案（身份未核验）")
        return None, reasons
    today = now.astimezone(CST).date()
    if rules.get("require_fees_paid"):
        grace = timedelta(days=int(rules.get("fee_grace_days") or 0))
        if owner.fees_paid_until is None:
            reasons.append("没有物业费缴纳记录")
        elif owner.fees_paid_until + grace < today:
            reasons.append(f"物业费仅缴至{owner.fees_paid_until.isoformat()}，已逾期")
    tiers = rules.get("tiers")
    if tiers and owner.tier not in tiers:
        reasons.append(f"会员等级为{owner.tier}，本群限{'/'.join(tiers)}业主")
    if rules.get("same_building") and group.building_id and (
            owner.home is None or owner.home.building_id != group.building_id):
        reasons.append("房屋不在本楼栋")
    return owner, reasons


def admission_card(adm: GroupAdmission, group: Group, name: str) -> dict:
    return {
        "card_type": "button_interaction",
        "source": {"desc": "群管家 · 入群核验"},
        "main_title": {"title": f"入群核验未通过：{name}"[:26], "desc": group.name[:30]},
        "sub_title_text": f"原因：{adm.reason}"[:112],
        "horizontal_content_list": [{"keyname": "群", "value": group.name[:30]},
                                    {"keyname": "成员", "value": name[:30]}],
        "task_id": f"adm-{adm.id}",
        "button_list": [{"text": "同意入群", "style": 1, "key": f"mod:admit:{adm.id}"},
                        {"text": "移出群聊", "style": 2, "key": f"mod:kick:{adm.id}"}],
    }


def admit(session: Session, group: Group, member_id: str, now: datetime) -> list[Push]:
    """Check one joiner; a card for the staff admin when they do not qualify."""
    owner, reasons = check_admission(session, group, member_id, now)
    member = _member_row(session, group, member_id)
    if owner is not None:
        member.owner_id = owner.id
    if not reasons:
        session.add(GroupAdmission(group_chat_id=group.chat_id, member_id=member_id,
                                   owner_id=owner.id if owner else None, decision="admitted", created_at=now))
        return []
    adm = GroupAdmission(group_chat_id=group.chat_id, member_id=member_id, owner_id=owner.id if owner else None,
                         decision="pending", reason="；".join(reasons), created_at=now)
    session.add(adm)
    session.flush()
    member.state = "pending"
    admin = ladder.staff_admin_of(session, group)
    log.info("admission %s: %s in %s pending (%d reasons)", adm.id, member_id, group.chat_id, len(reasons))
    if admin is None:
        return []
    name = owner.name if owner else member_id
    return [Push(channel="wecom", recipient=admin, kind="template_card",
                 payload={"card": admission_card(adm, group, name)}, dedup_key=f"adm:{adm.id}:card",
                 priority=3, source=f"admission:{adm.id}")]


def decide_admission(session: Session, now: datetime, adm: GroupAdmission, action: str, actor: str) -> None:
    """The staff admin's answer: admit anyway, or remove (by hand in WeCom; no API)."""
    if adm.decision not in ("pending",):
        return
    adm.decision = "admitted_by_staff" if action == "admit" else "removed"
    adm.decided_by, adm.decided_at = actor, now
    member = session.scalar(select(GroupMember).join(Group).where(
        Group.chat_id == adm.group_chat_id, GroupMember.member_id == adm.member_id))
    if member is not None:
        member.state = "active" if action == "admit" else "removed"
    session.add(AuditLog(actor=actor, action=f"group.admission.{action}", target=f"{adm.group_chat_id}/{adm.member_id}",
                         detail={"admission": adm.id, "reason": adm.reason}, created_at=now))


# --- the registry ----------------------------------------------------------------------------------

def _member_row(session: Session, group: Group, member_id: str) -> GroupMember:
    row = session.scalar(select(GroupMember).where(GroupMember.group_id == group.id,
                                                   GroupMember.member_id == member_id))
    if row is None:
        row = GroupMember(group_id=group.id, member_id=member_id)
        session.add(row)
        session.flush()
    return row


def _kind_for(name: str) -> str:
    words = admission_rules().get("vip_name_words") or []
    return "vip" if any(w in name for w in words) else "building"


def sync_group(session: Session, chat_id: str, info: dict, now: datetime) -> tuple[Group, list[str], list[str]]:
    """Bring the store in line with groupchat/get; returns (group, joined, left)."""
    group = session.scalar(select(Group).where(Group.chat_id == chat_id))
    name = str(info.get("name") or chat_id)
    if group is None:
        group = Group(chat_id=chat_id, name=name, kind=_kind_for(name), created_at=now)
        owner_staff = session.scalar(select(Staff).where(Staff.userid == info.get("owner")))
        group.staff_admin_id = owner_staff.id if owner_staff else None
        session.add(group)
        session.flush()
    elif info.get("name"):
        group.name = name
    admins = {a.get("userid") for a in info.get("admin_list") or []}
    current = {m["userid"]: m for m in info.get("member_list") or [] if m.get("userid")}
    rows = {r.member_id: r for r in session.scalars(select(GroupMember).where(GroupMember.group_id == group.id))}
    joined, left = [], []
    for uid, m in current.items():
        row = rows.get(uid)
        is_staff = int(m.get("type") or 2) == 1
        role = "staff" if is_staff else ("admin" if uid in admins else "member")
        if row is None or row.state in ("left", "removed"):
            joined.append(uid)
            row = row or _member_row(session, group, uid)
            row.state = "active"
        row.role = role
    for uid, row in rows.items():
        if uid not in current and row.state not in ("left", "removed"):
            row.state = "left"
            left.append(uid)
    return group, joined, left


@capability.event("change_external_chat")
def on_change_external_chat(ctx: Context, msg: Message, _route) -> Outcome:
    chat_id = str(msg.data.get("ChatId") or msg.group_id or "")
    change = str(msg.data.get("ChangeType") or "")
    out = Outcome(intent="event")
    if not chat_id:
        return out
    if change == "dismiss":
        group = ctx.session.scalar(select(Group).where(Group.chat_id == chat_id))
        if group is not None:
            for row in ctx.session.scalars(select(GroupMember).where(GroupMember.group_id == group.id)):
                row.state = "left"
        ctx.session.add(AuditLog(actor="wecom", action="group.dismiss", target=chat_id, created_at=ctx.now))
        return out
    info = ports.group_directory().get(chat_id)  # the platform's view (groupchat/get)
    if info is None:
        # Without the member list the event says nothing usable; the next event re-syncs.
        log.warning("change_external_chat %s %s: member list unavailable", chat_id, msg.data.get("UpdateDetail"))
        return out
    group, joined, left = sync_group(ctx.session, chat_id, info, ctx.now)
    members = {m["userid"]: m for m in info.get("member_list") or []}
    for uid in joined:
        if int(members[uid].get("type") or 2) == 2:
            out.pushes.extend(admit(ctx.session, group, uid, ctx.now))
    ctx.session.add(AuditLog(actor="wecom", action="group.sync", target=chat_id,
                             detail={"change": change, "detail": msg.data.get("UpdateDetail"),
                                     "join_scene": msg.data.get("JoinScene"), "quit_scene": msg.data.get("QuitScene"),
                                     "count": msg.data.get("MemChangeCnt"), "joined": len(joined),
                                     "left": len(left)}, created_at=ctx.now))
    log.info("group %s synced: +%d -%d", chat_id, len(joined), len(left))
    return out


# --- applying to join (003: 提交申请 -> 身份核验 -> 发放邀请 -> 确认加入) ----------------------------

APPLY_PATTERN = r"^(?:我要|我想|想|申请)?(?:加入|进|入)(?P<which>VIP|vip|贵宾|业主|楼栋|本楼)?群$|^申请入群$"


def _group_for(session: Session, owner: Owner, which: str | None) -> Group | None:
    if which and which.lower() in ("vip", "贵宾"):
        return session.scalar(select(Group).where(Group.kind == "vip").order_by(Group.id))
    building = owner.home.building_id if owner.home else None
    if which or building is None:
        return session.scalar(select(Group).where(Group.kind == "building", Group.building_id == building)) \
            if building else None
    # No group named: the VIP group when the owner's tier opens it, else their building's.
    tiers = (admission_rules().get("vip") or {}).get("tiers") or []
    if owner.tier in tiers:
        return session.scalar(select(Group).where(Group.kind == "vip").order_by(Group.id))
    return session.scalar(select(Group).where(Group.kind == "building", Group.building_id == building))


@capability.text_command("group_apply", APPLY_PATTERN, intent="command", chats=("private",),
                         why="asks to join a customer group")
def on_apply(ctx: Context, msg: Message, route) -> Outcome:
    """Apply -> verify (owner record, fees, tier/building) -> the staff admin invites
    -> joining is confirmed by change_external_chat (admit() finds them qualified)."""
    out = Outcome(intent="command")
    owner = find_owner(ctx.session, msg)
    if owner is None:
        return out.reply("暂未核验到您的业主身份。请先回复「人工」，由管家为您核验身份后再申请入群。")
    m = __import__("re").match(APPLY_PATTERN, msg.text.strip())
    group = _group_for(ctx.session, owner, m.group("which") if m else None)
    if group is None:
        return out.reply("暂时没有适合您的业主群，管家会另行通知。")
    if not owner.external_userid:
        return out.reply("请先添加您的专属管家企业微信，再回复「申请入群」，以便管家邀请您。")
    member = ctx.session.scalar(select(GroupMember).where(GroupMember.group_id == group.id,
                                                          GroupMember.member_id == owner.external_userid))
    if member is not None and member.state == "active":
        return out.reply(f"您已经在「{group.name}」里了。")
    _, reasons = check_admission(ctx.session, group, owner.external_userid, ctx.now)
    adm = GroupAdmission(group_chat_id=group.chat_id, member_id=owner.external_userid, owner_id=owner.id,
                         decision="to_invite" if not reasons else "refused", reason="；".join(reasons) or None,
                         created_at=ctx.now)
    ctx.session.add(adm)
    ctx.session.flush()
    if reasons:
        return out.reply(f"暂时无法加入「{group.name}」：{'；'.join(reasons)}。如有疑问请回复「人工」。")
    admin = ladder.staff_admin_of(ctx.session, group)
    if admin:
        out.push(Push(channel="wecom", recipient=admin, kind="text", dedup_key=f"adm:{adm.id}:invite",
                      payload={"content": f"【入群邀请】业主{owner.name}（{owner.room or '房号未登记'}）已通过入群核验"
                                          f"（业主身份、物业费记录），请邀请其加入「{group.name}」。"}, priority=3))
    return out.reply(f"已通过核验（业主身份、物业费缴纳记录），群管理员会尽快邀请您加入「{group.name}」。")
