"""Membership capability (seed 000): 我的会员, the way up, upgrade applications,
staff look-ups and sanctions, special-contribution upgrades, consultations
under the O1 clock, and the card clicks "member:...".

Public functions for other capabilities and the scheduler:
- `handlers.membership.service.evaluate_memberships(session, now) -> list[Push]`
- `handlers.membership.clocks.check_clocks(session, now) -> list[Push]`: the service clocks
  (also exported as `handlers.bookings.check_booking_clocks`; the scheduler fires every
  clock with `handlers.clocks.check_due`)
- `start_consult(session, owner, text, now)` / `answer_consult(...)`: the O1 staff task.
"""
from __future__ import annotations

import functools
import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers import handoff_hook
from handlers.identity import find_owner, find_staff
from handlers.membership import service as S
from handlers import clocks
from handlers.membership import clock_family  # noqa: F401  (registers the service clock family)
from handlers.membership.rules import load_rules, upper_tiers_pattern
from handlers.membership.notify import card_done, clock_config, dedicated_agent, recipients, task_card, team_members
from handlers.message import Context, Message, Outcome, Push
from handlers.membership.capability import capability
from store.models import Owner, ServiceClock

UP = upper_tiers_pattern()  # "银卡|金卡", from tiers.yaml
NOT_BOUND = "还没有查到您的业主信息。请先绑定房屋（回复「绑定」），或回复「人工」联系客服。"
_TIERS = {"警告": "warn", "暂停": "suspend", "降级": "downgrade"}


def _bound_owner(fn):
    """The handler gets the owner writing; an unbound sender is told how to bind."""
    @functools.wraps(fn)
    def handler(ctx: Context, msg: Message, route) -> Outcome:
        owner, out = _owner_or_reply(ctx, msg)
        return out if out else fn(ctx, msg, route, owner)

    return handler


def _owner_or_reply(ctx: Context, msg: Message) -> tuple[Owner | None, Outcome | None]:
    owner = find_owner(ctx.session, msg)
    if owner is None:
        return None, Outcome(replies=[NOT_BOUND], intent="membership")
    return owner, None


@capability.text_command("my_membership", r"^(?:查询?)?(?:我的会员(?:等级|信息|权益)?|会员等级|我的等级|我的权益|会员权益|我是什么会员)[?？。!！]*$",
                         intent="membership", chats=("private",), why="the owner's tier, spend and benefits")
@_bound_owner
def my_membership(ctx: Context, msg: Message, _route, owner: Owner) -> Outcome:
    return Outcome(replies=[S.summary(ctx.session, owner, ctx.now)], intent="membership")


@capability.text_command("member_gap", rf"^(?:我)?(?:还)?差多少.*$|^(?:怎么|如何|怎样)(?:才能)?(?:升级|升(?:{UP})|成为(?:{UP})).*$|^升级条件.*$",
                         intent="membership", chats=("private",), why="what is missing for the next tier")
@_bound_owner
def member_gap(ctx: Context, msg: Message, _route, owner: Owner) -> Outcome:
    e = S.eligibility(ctx.session, owner, S.local_day(ctx.now))
    if e.target is None:  # once: "您已是最高等级（金卡）会员。"
        return Outcome(replies=[f"您已是最高等级（{owner.tier}）会员，享有全部会员权益。"], intent="membership")
    wanted = re.search(f"({UP})", msg.text)
    prefix = f"您目前是{owner.tier}会员。"
    if wanted and e.target and wanted.group(1) != e.target:
        rules = load_rules()
        if rules.rank(wanted.group(1)) <= rules.rank(owner.tier):
            return Outcome(replies=[prefix + f"已享有{wanted.group(1)}及以上权益。"], intent="membership")
        prefix += f"需先升级为{e.target}，再由{e.target}升级为{wanted.group(1)}。"
    text = prefix + S.gap_text(e)
    return Outcome(replies=[text], intent="membership")


@capability.text_command("member_apply", rf"^(?:申请升级|申请会员升级|我要升级|申请(?:升级?为?)?(?:{UP})(?:会员)?)[。!！]*$",
                         intent="membership", chats=("private",), why="apply for the next tier")
@_bound_owner
def member_apply(ctx: Context, msg: Message, _route, owner: Owner) -> Outcome:
    text, pushes = S.apply_upgrade(ctx.session, owner, ctx.now)
    return Outcome(replies=[text], pushes=pushes, intent="membership")


@capability.intent("membership")
def on_membership(ctx: Context, msg: Message, route) -> Outcome:
    """Classified membership questions: the common ones answered from the
    rules; anything else becomes a consultation for a person (O1)."""
    if msg.chat != "private":  # a member's tier and spend are personal (第十五条): not in a group
        return Outcome(replies=["会员信息涉及个人隐私，请私信公众号「小区管家」查询或咨询。"], intent="membership")
    t = msg.text
    if re.search(f"申请.*(升级|{UP})", t):
        return member_apply(ctx, msg, route)
    if re.search(r"差多少|怎么升|如何升|升级条件|条件", t):
        return member_gap(ctx, msg, route)
    if re.search(r"我的|等级|权益|会员", t) and len(t) <= 12:
        return my_membership(ctx, msg, route)
    owner, out = _owner_or_reply(ctx, msg)
    if out:
        return out
    reply, pushes = start_consult(ctx.session, owner, t, ctx.now)
    return Outcome(replies=[reply], pushes=pushes, intent="membership")


def open_consult(session: Session, owner_id: int) -> ServiceClock | None:
    """The owner's consultation still waiting for a person, if any."""
    return session.scalar(select(ServiceClock).where(
        ServiceClock.owner_id == owner_id, ServiceClock.clock == "O1", ServiceClock.state.in_(clocks.ACTIVE_STATES),
        ServiceClock.subject.like("consult:%")).order_by(ServiceClock.id.desc()).limit(1))


def hand_to_person(session: Session, owner: Owner, text: str, now: datetime,
                   topic: str = "人工咨询") -> tuple[str | None, list[Push]]:
    """The bot passes a question to a person: a consultation case (see
    handlers.consultations), O1 running until staff answer. A second message
    while one is open joins that case and its holder is told."""
    return start_consult(session, owner, text, now, topic=topic)


def start_consult(session: Session, owner: Owner, text: str, now: datetime,
                  topic: str = "会员咨询") -> tuple[str, list[Push]]:
    """A question the bot cannot answer goes to the owner's dedicated agent or
    customer service as a consultation under O1 (第十一条), through the handoff hook."""
    return handoff_hook.hand_off(session, owner, text, now, topic)


def answer_consult(session: Session, clock_id: int, staff_userid: str, now: datetime) -> ServiceClock | None:
    row = session.get(ServiceClock, clock_id)
    if row is None:
        return None
    return clocks.stop_named(session, row.subject, row.clock, now, by=staff_userid)


# --- staff ---------------------------------------------------------------------------------

def _staff(ctx: Context, msg: Message, roles: tuple[str, ...] = ("staff", "supervisor", "manager")):
    st = find_staff(ctx.session, msg.sender)
    return st if st and st.role in roles else None


@capability.text_command("member_lookup", r"^查会员\s*(?P<key>\S+)$", intent="command", chats=("staff",),
                         roles=("staff",), why="staff look an owner's membership up (logged)")
def member_lookup(ctx: Context, msg: Message, _route) -> Outcome:
    key = re.match(r"^查会员\s*(\S+)$", msg.text.strip()).group(1)
    return Outcome(replies=[S.staff_lookup(ctx.session, msg.sender, key, ctx.now)], intent="command")


@capability.text_command("member_contribution", rf"^特殊贡献\s*(?P<key>\S+)\s+(?P<tier>{UP})\s+(?P<reason>.+)$",
                         intent="command", chats=("staff",), roles=("staff",), why="a manager's special-contribution upgrade")
def member_contribution(ctx: Context, msg: Message, _route) -> Outcome:
    m = re.match(rf"^特殊贡献\s*(\S+)\s+({UP})\s+(.+)$", msg.text.strip())
    owner = S.find_owner_by_key(ctx.session, m.group(1))
    if owner is None:
        return Outcome(replies=[f"没有找到业主「{m.group(1)}」。"], intent="command")
    try:
        row, pushes = S.grant_special_contribution(ctx.session, owner, m.group(2), m.group(3), msg.sender, ctx.now)
    except (PermissionError, ValueError) as exc:
        return Outcome(replies=[f"未执行：{'特殊贡献升级需由经理录入' if isinstance(exc, PermissionError) else exc}"],
                       intent="command")
    return Outcome(replies=[f"已将{owner.name}升级为{row.to_tier}（特殊贡献：{row.reason}），已通知业主并记录。"],
                   pushes=pushes, intent="command")


@capability.text_command("member_breach", r"^会员违规\s*(?P<key>\S+)\s+(?P<action>警告|暂停|降级)\s+(?P<reason>\S+)(?:\s+(?P<days>\d+)天?)?$",
                         intent="command", chats=("staff",), roles=("staff",), why="record a rule breach: warn / suspend / downgrade")
def member_breach(ctx: Context, msg: Message, _route) -> Outcome:
    m = re.match(r"^会员违规\s*(\S+)\s+(警告|暂停|降级)\s+(\S+)(?:\s+(\d+)天?)?$", msg.text.strip())
    if _staff(ctx, msg, ("supervisor", "manager")) is None:
        return Outcome(replies=["会员处罚需由主管或经理录入。"], intent="command")
    owner = S.find_owner_by_key(ctx.session, m.group(1))
    if owner is None:
        return Outcome(replies=[f"没有找到业主「{m.group(1)}」。"], intent="command")
    try:
        row, pushes = S.record_breach(ctx.session, owner, _TIERS[m.group(2)], m.group(3), msg.sender, ctx.now,
                                      int(m.group(4)) if m.group(4) else None)
    except ValueError as exc:
        return Outcome(replies=[f"未执行：{exc}"], intent="command")
    return Outcome(replies=[f"已记录：{owner.name} {m.group(2)}（{m.group(3)}），已通知业主。"], pushes=pushes, intent="command")


@capability.card("member:")
def on_member_card(ctx: Context, msg: Message, key: str) -> Outcome:
    parts = key.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        return Outcome(intent="event")
    action, ident = parts[1], int(parts[2])
    code = msg.data.get("ResponseCode")
    if action in ("approve", "reject"):
        text, pushes = S.review_application(ctx.session, ident, action == "approve", msg.sender, ctx.now)
        label = "已通过" if action == "approve" else "已驳回"
    elif action == "answered":
        answer_consult(ctx.session, ident, msg.sender, ctx.now)
        text, pushes, label = "已记录回复。", [], "已回复"
    else:
        return Outcome(intent="event")
    st = find_staff(ctx.session, msg.sender)
    team = clock_config().get("review_team", "customer_service")
    upd = card_done(code, recipients(team_members(ctx.session, team)) or msg.sender,
                    f"{st.name if st else msg.sender}{label}")
    return Outcome(replies=[text], pushes=pushes + ([upd] if upd else []), intent="event")
