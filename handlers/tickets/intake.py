"""Intake: a classified complaint or repair becomes a ticket at once.

The ticket records content, owner, room, contact and time (001 三.1). An owner
whose OA account is not yet bound to a home is asked for the room and the last
four digits of the phone on record; the ticket waits (state waiting_home), it
is not dropped, and is dispatched the moment the binding succeeds.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers import conversation, privacy, registry
from handlers.identity import find_owner
from handlers.message import Context, Message, Outcome, Push
from handlers.tickets.capability import capability
from handlers.route_result import RouteResult
from handlers.tickets import core
from handlers.tickets.attachments import attach_pending  # also registers the photo and location handlers
from handlers.tickets.intake_rules import intake_rules
from handlers.tickets.policy import PRIORITIES, policy, roster
from store.models import Home, Owner, Ticket
from handlers.membership.notify import by_role
from handlers.normalize import basic
from handlers.router import route as route_text

BIND_CONV = "ticket_bind"
DETAILS_CONV, DETAILS_TTL = core.DETAILS_CONV, core.DETAILS_TTL
BIND_TTL = timedelta(days=3)
BIND_TRIES = 3
_ROOM = re.compile(r"(\d{1,2})\s*[-－栋#号]\s*(\d{3,4})")
_LAST4 = re.compile(r"(?<!\d)(\d{4})(?!\d)")


def create_ticket(session: Session, msg: Message, owner: Owner | None, priority: str | None,
                  category: str | None, now: datetime) -> tuple[Ticket, list[Push]]:
    """Registers the request; dispatches it when the home is known."""
    priority = priority if priority in PRIORITIES else "general"
    category = category or "other"
    kind = "repair" if category in policy().repair_categories else "complaint"
    team = roster().team_for(category)
    rules = intake_rules()
    conduct = rules.about_conduct(msg.text or "")
    if conduct:  # the guard's own team must not judge the guard
        kind, team = "complaint", rules.conduct_team
    ticket = Ticket(kind=kind, priority=priority, category=category, team=team,
                    content=msg.text.strip(), state="waiting_home", channel=msg.channel, sender=msg.sender,
                    notified=[], created_at=now)
    session.add(ticket)
    session.flush()
    core.record(session, ticket, msg.sender, "created", now, content=ticket.content, priority=priority,
                category=category, kind=kind, channel=msg.channel, chat=msg.chat,
                **({"about": "staff_conduct"} if conduct else {}))
    pushes: list[Push] = []
    if owner is not None and owner.home is not None:
        pushes = attach_owner(session, ticket, owner, now)
    if conduct:
        pushes += _tell_supervisors(session, ticket, now)
    return ticket, pushes


def _tell_supervisors(session: Session, ticket: Ticket, now: datetime) -> list[Push]:
    """A complaint about a staff member's conduct: the supervisor hears of it at once."""
    rules = intake_rules()
    people = [st.userid for role in rules.notify_roles for st in by_role(session, role, rules.conduct_team)]
    people = [u for u in dict.fromkeys(people) if u not in (ticket.notified or [])]
    core.record(session, ticket, "bot", "conduct_reported", now, to=people)
    return [core.staff_text(u, f"【员工服务投诉】工单{ticket.number}（{ticket.room or '房号待核对'}）：{privacy.excerpt(ticket.content, 80)}。"
                               f"已交{roster().team_label(ticket.team)}处理，请跟进。",
                            f"ticket:{ticket.id}:conduct:{u}", ticket, priority=2) for u in people]


def attach_owner(session: Session, ticket: Ticket, owner: Owner, now: datetime) -> list[Push]:
    """Fills owner, room and contact, starts the clocks (from the time the owner
    reported it, so binding delays count against us, not the owner) and dispatches."""
    ticket.owner_id, ticket.room = owner.id, owner.room
    ticket.building = owner.home.building.code if owner.home and owner.home.building else None
    ticket.contact_name, ticket.contact_phone = owner.name, owner.phone
    ticket.state = "open"
    core.record(session, ticket, "bot", "registered", now, owner=owner.name, room=ticket.room,
                contact=owner.phone)
    # "created" starts the class's clocks, from the time of the report (recorded already).
    core.fire(session, ticket, "created", "bot", now, clock_start=ticket.created_at, quiet=True)
    return core.dispatch(session, ticket, now)


def _ack(ticket: Ticket) -> str:
    cls = core.class_label(ticket.priority)
    cat = core.CATEGORY_LABELS.get(ticket.category, ticket.category)
    promise = policy().classes[ticket.priority].promise
    return (f"已为您登记工单{ticket.number}（{cls}·{cat}），已通知{roster().team_label(ticket.team)}值班人员"
            + (f"，{promise}" if promise else "") + f"。处理进度会随时告诉您。查询进度回复「我的工单」，催办回复「催一下 {ticket.number}」。")


@capability.intent("complaint")
def on_complaint(ctx: Context, msg: Message, route: RouteResult | None) -> Outcome:
    route = route or RouteResult(intent="complaint")
    staff = msg.role in ("staff", "admin") and msg.chat == "staff"
    if not staff and intake_rules().only_opener(msg.text):
        # 「我要投诉」 says nothing yet: ask what happened, register one ticket with the answer.
        conversation.start(ctx.session, msg.sender, msg.chat, DETAILS_CONV, {"opener": msg.text.strip()},
                           ctx.now, ttl=DETAILS_TTL, group_id=msg.group_id)
        return Outcome(replies=[intake_rules().ask], intent="complaint")
    return register(ctx, msg, route, staff)


@capability.conversation(DETAILS_CONV)
def on_details(ctx: Context, msg: Message, conv) -> Outcome | None:
    """The answer to "what happened?" becomes the ticket (one ticket, with the details)."""
    rules = intake_rules()
    text = (msg.text or "").strip()
    if rules.cancels(text):
        conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
        return Outcome(replies=["好的，已取消。有需要随时告诉我。"], intent="complaint")
    if registry.match_text_command(basic(text), msg.chat, msg.role or "owner"):
        conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
        return None  # another command: the router has it
    if rules.only_opener(text):
        return Outcome(replies=[rules.ask], intent="complaint")
    conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
    found = route_text(text, msg.chat, msg.role or "owner")
    result = RouteResult(intent="complaint", priority=found.priority, category=found.category)
    out = register(ctx, msg, result, staff=False)
    media = (conv.state or {}).get("media")
    if media:  # photos / a location sent before the words
        ticket = ctx.session.scalar(select(Ticket).where(Ticket.sender == msg.sender).order_by(Ticket.id.desc()).limit(1))
        if ticket is not None:
            out.pushes += attach_pending(ctx.session, ticket, media, ctx.now)
    return out


_QUESTION = re.compile(r"[?？吗么]$|怎么样|如何|是否|几点")


@capability.routed
def on_routed(ctx: Context, msg: Message, route) -> Outcome | None:
    """「门口保安对我很凶」: a staff member's conduct is a complaint even when the
    classifier only found a loose FAQ match; it goes to customer service."""
    if (msg.chat == "private" and not route.handler and route.intent in ("faq", "handoff", "smalltalk")
            and not route.faq_id and intake_rules().about_conduct(msg.text or "")
            and not _QUESTION.search((msg.text or "").strip())):
        return register(ctx, msg, RouteResult(intent="complaint", priority="general", category="other"), staff=False)
    return None


def register(ctx: Context, msg: Message, route: RouteResult, staff: bool) -> Outcome:
    # Staff registering a request for an owner name the room; owners are who they are.
    owner = _owner_of_room(ctx.session, msg.text) if staff else find_owner(ctx.session, msg)
    ticket, pushes = create_ticket(ctx.session, msg, owner, route.priority, route.category, ctx.now)
    if ticket.state == "open":
        return Outcome(replies=[_ack(ticket)], pushes=pushes, intent="complaint")
    # Not bound yet: the ticket waits for the room check.
    conv = conversation.get(ctx.session, msg.sender, msg.chat, ctx.now, msg.group_id)
    waiting = list(conv.state.get("tickets", [])) if conv is not None and conv.handler == BIND_CONV else []
    conversation.start(ctx.session, msg.sender, msg.chat, BIND_CONV,
                       {"tickets": waiting + [ticket.id], "tries": 0, "staff": staff},
                       ctx.now, ttl=BIND_TTL, group_id=msg.group_id)
    if staff:
        return Outcome(replies=[f"已登记工单{ticket.number}，请回复业主房号（例如 1-1201）以便派单。"], intent="complaint")
    return Outcome(replies=[f"已记录您的诉求，工单号{ticket.number}。为了尽快派人处理，请先核对房屋："
                            f"回复房号和预留手机号后四位，例如「1-1201 0002」。"], intent="complaint")


def _room(text: str) -> str | None:
    m = _ROOM.search(text or "")
    return f"{int(m.group(1))}-{m.group(2).zfill(4)}" if m else None


def _owner_of_room(session: Session, text: str) -> Owner | None:
    room = _room(text)
    home = session.scalar(select(Home).where(Home.room == room)) if room else None
    if home is None:
        return None
    return session.scalars(select(Owner).where(Owner.home_id == home.id).order_by(Owner.id)).first()


def bind_home(session: Session, sender: str, room: str, last4: str, channel: str = "mp") -> tuple[Owner | None, str]:
    """Binds an owner's platform identity (OA openid, or the WeCom external_userid
    for someone writing from a customer group) to the owner on record for `room`
    if the phone matches. Returns (owner, "") or (None, reason)."""
    field = "openid" if channel == "mp" else "external_userid"
    home = session.scalar(select(Home).where(Home.room == room))
    if home is None:
        return None, f"没有找到房号{room}。"
    owners = session.scalars(select(Owner).where(Owner.home_id == home.id)).all()
    match = next((o for o in owners if o.phone and o.phone.endswith(last4)), None)
    if match is None:
        return None, "房号与手机号后四位不匹配。"
    if getattr(match, field) and getattr(match, field) != sender:
        return None, "该房屋已绑定其他微信号，请联系客服中心核实。"
    other = session.scalar(select(Owner).where(getattr(Owner, field) == sender, Owner.id != match.id))
    if other is not None:
        setattr(other, field, None)  # one account, one home
    setattr(match, field, sender)
    session.flush()
    return match, ""


@capability.conversation(BIND_CONV)
def on_bind_reply(ctx: Context, msg: Message, conv) -> Outcome | None:
    text = msg.text.strip()
    if conv.state.get("staff"):
        return _staff_room_reply(ctx, msg, conv)
    m_room = _ROOM.search(text)
    rest = text[m_room.end():] if m_room else text
    m_last = _LAST4.search(rest)
    state = dict(conv.state)
    # People answer in two messages as often as in one: keep the half already given.
    room = f"{int(m_room.group(1))}-{m_room.group(2).zfill(4)}" if m_room else state.get("room")
    last4 = m_last.group(1) if m_last else (state.get("last4") if m_room is None else None)
    if not m_room and not m_last:
        return None  # something else: let the router have it, the tickets keep waiting
    if room is None or last4 is None:
        state.update(room=room, last4=last4)
        conversation.update(ctx.session, conv, state, ctx.now, ttl=BIND_TTL)
        ask = "预留手机号的后四位" if room else "房号（例如 1-1201）"
        return Outcome(replies=[f"好的，请再回复{ask}，核对后立即为您派单。"], intent="command")
    state.pop("room", None)
    state.pop("last4", None)
    owner, why = bind_home(ctx.session, msg.sender, room, last4, msg.channel)
    tickets = [core.get_ticket(ctx.session, t) for t in state.get("tickets", [])]
    tickets = [t for t in tickets if t is not None and t.state == "waiting_home"]
    if owner is None:
        state["tries"] = state.get("tries", 0) + 1
        for t in tickets:
            core.record(ctx.session, t, msg.sender, "bind_failed", ctx.now, reason=why, tries=state["tries"])
        if state["tries"] >= BIND_TRIES:
            conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
            nums = "、".join(t.number for t in tickets)
            return Outcome(replies=[f"{why}多次核对未成功，请致电客服中心核实身份，您的工单{nums}已保留，核实后立即派单。"],
                           intent="command")
        conversation.update(ctx.session, conv, state, ctx.now, ttl=BIND_TTL)
        return Outcome(replies=[f"{why}请再核对一次：房号和预留手机号后四位，例如「1-1201 0002」。"], intent="command")
    conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
    out = Outcome(intent="command")
    for t in tickets:
        core.record(ctx.session, t, msg.sender, "owner_bound", ctx.now, owner=owner.name, room=owner.room)
        out.pushes += attach_owner(ctx.session, t, owner, ctx.now)
    nums = "、".join(t.number for t in tickets) or "无"
    out.replies.append(f"核对成功，{owner.name}您好，已绑定房屋{owner.room}。工单{nums}已派给值班人员，进度会随时通知您。")
    return out


def _staff_room_reply(ctx: Context, msg: Message, conv) -> Outcome | None:
    """Staff registering for an owner: the room is enough (no phone check, no binding)."""
    if _room(msg.text) is None:
        return None
    owner = _owner_of_room(ctx.session, msg.text)
    if owner is None:
        return Outcome(replies=[f"没有找到房号{_room(msg.text)}的业主，请核对后再回复。"], intent="command")
    conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
    out = Outcome(intent="command")
    tickets = [core.get_ticket(ctx.session, t) for t in conv.state.get("tickets", [])]
    for t in [t for t in tickets if t is not None and t.state == "waiting_home"]:
        core.record(ctx.session, t, msg.sender, "room_given", ctx.now, room=owner.room, owner=owner.name)
        out.pushes += attach_owner(ctx.session, t, owner, ctx.now)
        out.replies.append(f"工单{t.number}已关联{owner.room} {owner.name}，已派单。")
    return out
