"""Group slash commands (/帮助 /公告 /警告 /禁言 /解禁 /移除 /工单 /统计, with
English names), from a customer group (read through the archive) or from the
WeCom app chat naming the group. Who may use what is data
(data/commands.yaml); every attempt, refused or not, is audited.

Customer groups cannot be acted on by API, so /警告 /禁言 /移除 record the
step (a ModerationCase, the same ladder as automatic moderation) and hand the
staff admin the ready text; in the app's own staff groups (appchat) /移除
removes the member directly.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ground import ports
from ground import rules as rulefiles
from ground.clock import CST
from handlers import scope
from handlers.groups import ladder, staff_groups
from handlers.groups.capability import capability
from handlers.groups.moderation import mask
from handlers.identity import find_owner
from handlers.message import Context, Message, Outcome, Push
from handlers.zh_datetime import cn_number, parse_when
from store.models import AuditLog, Group, GroupMember, InboxMessage, Owner, Staff
from store.models.groups import GroupSuggestion, ModerationCase
from store.models.tickets import Ticket

log = logging.getLogger(__name__)
DATA_FILE = Path(__file__).with_name("data") / "commands.yaml"
ROLES = ("supervisor", "staff_admin", "staff", "owner_admin", "owner")


COMMANDS = rulefiles.RuleFile(DATA_FILE, schema=rulefiles.MapOf(rulefiles.Record(
    names=rulefiles.ListOf(rulefiles.Text(), min=1), roles=rulefiles.ListOf(rulefiles.OneOf(*ROLES)),
    usage=rulefiles.Text(), summary=rulefiles.Text())))


def specs() -> dict[str, dict[str, Any]]:
    return COMMANDS.get()


def _by_name() -> dict[str, str]:
    return {n.lower(): key for key, spec in specs().items() for n in spec["names"]}


# --- who and where --------------------------------------------------------------------------

def command_role(session: Session, msg: Message, group: Group | None) -> str:
    staff = session.scalar(select(Staff).where(Staff.userid == msg.sender, Staff.active.is_(True)))
    if staff is not None:
        if staff.role in ("supervisor", "manager"):
            if group is None or scope.can_see_group(session, scope.for_staff(session, staff), group.chat_id):
                return "supervisor"
        if group is None:  # app chat without a group (/公告 to a building): any staff admin
            runs_one = session.scalar(select(Group.id).where(Group.staff_admin_id == staff.id).limit(1))
            return "staff_admin" if runs_one else "staff"
        return "staff_admin" if group.staff_admin_id == staff.id else "staff"
    if group is not None:
        member = session.scalar(select(GroupMember).where(GroupMember.group_id == group.id,
                                                          GroupMember.member_id == msg.sender))
        if member is not None and member.role == "admin":
            return "owner_admin"
    return "owner"


def _find_group(session: Session, token: str) -> Group | None:
    groups = session.scalars(select(Group)).all()
    for g in groups:
        if token == g.chat_id or token == g.name:
            return g
    hits = [g for g in groups if token in g.name or (token.upper() == "VIP" and g.kind == "vip")]
    return hits[0] if len(hits) == 1 else None


def _target_group(session: Session, msg: Message, args: list[str]) -> tuple[Group | None, list[str]]:
    """The group the command is about: the chat it came from, or (app chat) a
    first argument naming it, or the only group the staff member administers."""
    if msg.group_id:
        return session.scalar(select(Group).where(Group.chat_id == msg.group_id)), args
    if args and not args[0].startswith("@"):
        g = _find_group(session, args[0])
        if g is not None:
            return g, args[1:]
    staff = session.scalar(select(Staff).where(Staff.userid == msg.sender))
    if staff is not None:
        own = session.scalars(select(Group).where(Group.staff_admin_id == staff.id)).all()
        if len(own) == 1:
            return own[0], args
    return None, args


def _find_member(session: Session, group: Group, token: str) -> GroupMember | None:
    name = token.lstrip("@")
    rows = session.scalars(select(GroupMember).where(GroupMember.group_id == group.id)).all()
    for r in rows:
        if r.member_id == name or (r.owner is not None and r.owner.name == name):
            return r
    staff = session.scalar(select(Staff).where(Staff.name == name))
    if staff is not None:
        return next((r for r in rows if r.member_id == staff.userid), None)
    owner = session.scalar(select(Owner).where(Owner.name == name))
    if owner is not None:
        return next((r for r in rows if r.member_id == owner.external_userid), None)
    return None


DURATION = re.compile(r"^(\d+|[一二两三四五六七八九十]+)\s*(分钟|分|小时|时|h|天|日|d|m|min)$", re.I)


def parse_duration(text: str) -> int | None:
    """Minutes in "30分钟" / "2小时" / "1天" / "两天"; None when not understood."""
    m = DURATION.match(text.strip())
    if not m:
        return None
    n = int(m.group(1)) if m.group(1).isdigit() else cn_number(m.group(1))
    if not n:
        return None
    unit = m.group(2).lower()
    return n * (1440 if unit in ("天", "日", "d") else 60 if unit in ("小时", "时", "h") else 1)


# --- the one handler -------------------------------------------------------------------------

class Reply(Exception):
    """A short answer that ends the command (bad arguments, wrong role...)."""

    def __init__(self, text: str, result: str) -> None:
        super().__init__(text)
        self.text, self.result = text, result


def _usage(key: str) -> str:
    return f"用法：{specs()[key]['usage']}"


@capability.text_command("group_command", r"^/(?P<name>帮助|help|公告|notice|警告|warn|禁言|mute|解禁|unmute|移除|remove|kick|工单|ticket|统计|stats)(?:\s+(?P<args>.*))?$",
                         intent="command", chats=("vip", "building", "staff"), why="group slash command")
def on_command(ctx: Context, msg: Message, route) -> Outcome:
    m = re.match(r"^/(\S+)\s*(.*)$", msg.text.strip().replace("／", "/"), re.S)
    key = _by_name().get((m.group(1) if m else "").lower())
    args = (m.group(2) if m else "").split()
    group, args = _target_group(ctx.session, msg, args)
    role = command_role(ctx.session, msg, group)
    result, text, pushes = "ok", "", []
    try:
        if key is None:
            raise Reply("未知指令。发送 /帮助 查看可用指令。", "unknown")
        allowed = specs()[key]["roles"]
        if key not in ("help", "ticket", "notice") and group is None:
            raise Reply("请指明群，例如：/" + specs()[key]["names"][0] + " VIP群 ……（或在群里直接发送）。", "bad_args")
        if role not in allowed:
            raise Reply(f"抱歉，/{specs()[key]['names'][0]} 仅限{_role_names(allowed)}使用。发送 /帮助 查看您可用的指令。",
                        "refused")
        text, pushes = HANDLERS[key](ctx, msg, group, role, args)
    except Reply as r:
        text, result = r.text, r.result
        if isinstance(r, _Posted):
            pushes = [r.push]
    ctx.session.add(AuditLog(actor=msg.sender, action=f"command.{key or 'unknown'}",
                             target=group.chat_id if group else None,
                             detail={"args": mask(" ".join(args))[:200], "role": role, "result": result,
                                     "chat": msg.chat}, created_at=ctx.now))
    out = Outcome(intent="command", pushes=pushes)
    if msg.chat in ("vip", "building") and role in ("supervisor", "staff_admin", "staff"):
        # Staff get their answer privately in the app, not as a suggestion to post in the group.
        out.pushes.append(Push(channel="wecom", recipient=msg.sender, kind="text", payload={"content": text},
                               dedup_key=f"cmd:{msg.dedup_key()}"[:128], priority=2))
    else:
        out.replies.append(text)
    return out


def _role_names(roles: list[str]) -> str:
    names = {"supervisor": "主管", "staff_admin": "本群物业管理员", "staff": "物业员工", "owner_admin": "业主管理员",
             "owner": "业主"}
    return "、".join(names[r] for r in roles if r != "owner")


# --- each command ----------------------------------------------------------------------------

def _help(ctx, msg, group, role, args):
    lines = ["可用指令："]
    for key, spec in specs().items():
        if role in spec["roles"] or role == "supervisor":
            lines.append(f"{spec['usage'].split('，')[0]}  {spec['summary']}")
    if msg.chat == "staff":
        lines.append("在应用里使用时，请在指令后写上群名，例如 /统计 VIP群 本周")
    return "\n".join(lines), []


def _member_arg(ctx, group, args, key) -> tuple[GroupMember, list[str]]:
    if not args or not args[0].startswith("@"):
        raise Reply(_usage(key), "bad_args")
    member = _find_member(ctx.session, group, args[0])
    if member is None:
        raise Reply(f"群「{group.name}」里没有找到 {args[0]}。", "bad_args")
    return member, args[1:]


def _sanction(ctx, msg, group, role, args, key, step):
    member, rest = _member_arg(ctx, group, args, key)
    if group.kind == "staff":
        return _staff_group(ctx, msg, group, member, rest, step), []
    minutes = None
    if step == "mute":
        if not rest:
            raise Reply(_usage(key), "bad_args")
        minutes = parse_duration(rest[0])
        if minutes is None or minutes > 30 * 1440:
            raise Reply("时长请写成 30分钟、2小时 或 1天（最长30天）。", "bad_args")
        rest = rest[1:]
    elif not rest:
        raise Reply(_usage(key), "bad_args")
    reason = mask(" ".join(rest))[:200] or "管理员处理"
    case, pushes = ladder.strike(ctx.session, ctx.now, chat_id=group.chat_id, member_id=member.member_id,
                                 violation="manual", why=f"{specs()[key]['names'][0]}：{reason}", evidence=reason,
                                 source="command", actor=msg.sender, force_step=step, mute_minutes=minutes)
    name = ladder.member_name(ctx.session, member.member_id)
    # The staff admin's own command needs no card asking them to do it; anyone else's does.
    if ladder.staff_admin_of(ctx.session, group) == msg.sender:
        pushes = []
    what = {"warn": "已记录警告", "mute": f"已记录禁言（至{case.mute_until.astimezone(CST):%m-%d %H:%M}）" if case.mute_until else "",
            "remove": "已记录移除"}[step]
    return f"{what}：{name}。请在群内发送：\n{case.warning_text}", pushes


def _staff_group(ctx, msg, group, member, rest, step) -> str:
    """Staff groups created by the app: the API posts and removes by itself."""
    staff = ctx.session.scalar(select(Staff).where(Staff.userid == member.member_id))
    name = staff.name if staff else member.member_id
    reason = " ".join(rest) or "管理员处理"
    if step == "mute":
        raise Reply("内部群不支持禁言，可用 /警告 或 /移除。", "bad_args")
    if step == "warn":
        raise _Posted(staff_groups.post(group.chat_id, f"@{name} 提醒：{reason}"), f"已在「{group.name}」提醒 {name}。")
    try:
        # Synchronous on purpose (through the staff-chats port, not a queued push): the reply
        # says whether the member is out, and only the platform's answer can tell.
        staff_groups.remove_member(ctx.session, ctx.now, group, member.member_id, msg.sender)
    except ports.PlatformError as exc:
        raise Reply(f"移出失败：{exc}", "failed") from None
    return f"已将 {name} 移出「{group.name}」。"


class _Posted(Reply):
    def __init__(self, push: Push, text: str) -> None:
        super().__init__(text, "ok")
        self.push = push


def _warn(ctx, msg, group, role, args):
    return _sanction(ctx, msg, group, role, args, "warn", "warn")


def _mute(ctx, msg, group, role, args):
    return _sanction(ctx, msg, group, role, args, "mute", "mute")


def _remove(ctx, msg, group, role, args):
    return _sanction(ctx, msg, group, role, args, "remove", "remove")


def _unmute(ctx, msg, group, role, args):
    member, _ = _member_arg(ctx, group, args, "unmute")
    mute = ladder.active_mute(ctx.session, group.chat_id, member.member_id, ctx.now)
    name = ladder.member_name(ctx.session, member.member_id)
    if mute is None:
        raise Reply(f"{name} 目前没有被禁言。", "bad_args")
    mute.mute_until, mute.status = ctx.now, "lifted"
    mute.decided_by, mute.decided_at = msg.sender, ctx.now
    return f"已解除 {name} 的禁言。可在群内告知：@{name} 您的禁言已解除，欢迎继续交流。", []


def _notice(ctx, msg, group, role, args):
    if not args:
        raise Reply(_usage("notice"), "bad_args")
    # 「/公告 紧急 ...」 is the admin's explicit tick: only it makes an emergency (sent through
    # the quiet hours); a word like 停水 in the text never does (bot/campaigns.py).
    emergency = args[0] in ("紧急", "urgent") and len(args) > 1
    if emergency:
        args = args[1:]
    building = None
    if len(args) > 1 and re.fullmatch(r"\d+栋|全部|所有", args[-1]):
        building = None if args[-1] in ("全部", "所有") else args[-1]
        args = args[:-1]
    at = None
    for n in (2, 1):
        if len(args) > n:
            when = parse_when(" ".join(args[-n:]), ctx.now)
            if when is not None:
                at = when.start if when.has_time else when.start.replace(hour=9)
                args = args[:-n]
                break
    text = " ".join(args).strip()
    if not text:
        raise Reply(_usage("notice"), "bad_args")
    target = {"buildings": [building]} if building else ({"groups": [group.chat_id]} if msg.group_id else
                                                          {"everyone": True})
    try:
        # The campaign is only recorded here (and queued after the commit): no platform call.
        camp = ports.campaigns().create_announcement(ctx.session, text, target, at=at, created_by=msg.sender,
                                                     emergency=emergency)
    except ports.CampaignError as exc:
        raise Reply(f"公告未创建：{exc}", "bad_args") from None
    when = "立即发送" if camp.send_at <= ctx.now + timedelta(minutes=1) else \
        f"将于{camp.send_at.astimezone(CST):%m-%d %H:%M}发送"
    scope = building or ("本群" if msg.group_id else "全体业主")
    kind = "紧急公告" if camp.emergency else "公告"
    return f"{kind}已创建（{scope}，{when}）：{text[:60]}", []


def _ticket(ctx, msg, group, role, args):
    if not args or not re.fullmatch(r"[Tt]?\d{1,9}", args[-1]):
        raise Reply(_usage("ticket"), "bad_args")
    t = ctx.session.get(Ticket, int(args[-1].lstrip("Tt")))
    if t is not None and not _may_see_ticket(ctx, msg, role, t):
        t = None  # the same answer as a missing ticket: nothing about others' tickets leaks
    if t is None:
        raise Reply(f"没有找到工单 {args[-1].upper()}。", "bad_args")
    who = t.assignee or "待接单"
    return (f"工单 T{t.id}：{t.state}，{t.priority}，{t.category}\n处理人：{who}\n"
            f"内容：{mask(t.content)[:80]}"), []


def _may_see_ticket(ctx, msg, role, t) -> bool:
    """Staff: the building scope of handlers/scope.py (as in the console and the API);
    owners: only their own tickets."""
    if role in ("supervisor", "staff_admin", "staff"):
        return scope.can_see_ticket(scope.for_userid(ctx.session, msg.sender), t)
    owner = find_owner(ctx.session, msg)
    return t.sender == msg.sender or (owner is not None and t.owner_id == owner.id)


PERIODS = {"今天": 0, "today": 0, "本周": "week", "week": "week", "本月": "month", "month": "month",
           "7天": 7, "30天": 30}


def period_start(token: str | None, now: datetime) -> tuple[datetime, str]:
    local = now.astimezone(CST)
    key = PERIODS.get((token or "7天").lower())
    if key is None:
        raise Reply(_usage("stats"), "bad_args")
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if key == 0:
        return midnight, "今天"
    if key == "week":
        return midnight - timedelta(days=local.weekday()), "本周"
    if key == "month":
        return midnight.replace(day=1), "本月"
    return now - timedelta(days=key), f"近{key}天"


def _stats(ctx, msg, group, role, args):
    since, label = period_start(args[0] if args else None, ctx.now)
    s = ctx.session
    msgs = [r for r in s.scalars(select(InboxMessage).where(InboxMessage.channel == "archive",
                                                            InboxMessage.created_at >= since))
            if (r.payload or {}).get("group_id") == group.chat_id]
    cases = s.scalars(select(ModerationCase).where(ModerationCase.group_chat_id == group.chat_id,
                                                   ModerationCase.created_at >= since)).all()
    by = {}
    for c in cases:
        by[c.violation] = by.get(c.violation, 0) + 1
    fp = sum(1 for c in cases if c.false_positive)
    sugg = s.scalar(select(func.count()).select_from(GroupSuggestion).where(
        GroupSuggestion.group_chat_id == group.chat_id, GroupSuggestion.created_at >= since)) or 0
    sent = s.scalar(select(func.count()).select_from(GroupSuggestion).where(
        GroupSuggestion.group_chat_id == group.chat_id, GroupSuggestion.created_at >= since,
        GroupSuggestion.state == "sent")) or 0
    members = s.scalar(select(func.count()).select_from(GroupMember).where(
        GroupMember.group_id == group.id, GroupMember.state == "active")) or 0
    kinds = "、".join(f"{ladder.label(k)}{v}" for k, v in sorted(by.items())) or "无"
    return (f"「{group.name}」{label}统计\n成员：{members}人\n消息：{len(msgs)}条\n"
            f"违规处理：{len(cases)}次（{kinds}），误判撤销{fp}次\n建议回复：{sugg}条，已发送{sent}条"), []


HANDLERS = {"help": _help, "notice": _notice, "warn": _warn, "mute": _mute, "unmute": _unmute, "remove": _remove,
            "ticket": _ticket, "stats": _stats}


@capability.text_command("group_command_unknown", r"^/\S+", intent="command", chats=("vip", "building"),
                         why="unknown group slash command")
def on_unknown_command(ctx: Context, msg: Message, route) -> Outcome:
    """Any other "/..." in a group gets the help pointer (and is audited)."""
    return on_command(ctx, msg, route)
