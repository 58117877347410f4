"""Member-service bookings: a conversation that fills in service, time and
place, confirms, then hands the booking to staff under the O2/O3 clocks.
Also 取消预约, 改到..., 我的预约, 评分N, and the card clicks "booking:...".

For the scheduler: `check_booking_clocks(session, now) -> list[Push]`.
"""
from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from handlers import conversation, registry
from handlers.bookings import ops
from handlers.bookings.capability import capability
from handlers.bookings.catalogue import Service, catalogue, find_service
from handlers.identity import find_owner
from handlers.membership.clocks import check_clocks
from handlers.message import Context, Message, Outcome, Push
from handlers.normalize import basic
from handlers.zh_datetime import When, parse_when
from store.models import Owner

NOT_BOUND = "还没有查到您的业主信息。请先绑定房屋（回复「绑定」），或回复「人工」联系客服。"
YES = re.compile(r"^(确认|确定|是的?|好的?|对|可以|没问题|嗯+|ok|OK|行)[。!！]*$")
QUIT = re.compile(r"^(取消|取消预约|算了|不要了|不用了|不约了|退出)[。!！]*$")
TTL_MINUTES = 30
CHANGE_VERB = re.compile(r"改到|改期到?|改成|换到|改约到?|改时间到?")


def check_booking_clocks(session: Session, now: datetime) -> list[Push]:
    """Every member-service clock (O1, O2 review/contact, O3): escalate the
    broken ones, once per step. Idempotent (levels stored, dedup keys)."""
    return check_clocks(session, now)


def _owner(ctx: Context, msg: Message) -> Owner | None:
    return find_owner(ctx.session, msg)


def _bound_owner(fn):
    """The command gets the owner writing; an unbound sender is told how to bind."""
    @functools.wraps(fn)
    def handler(ctx: Context, msg: Message, route) -> Outcome:
        owner = _owner(ctx, msg)
        return Outcome(replies=[NOT_BOUND], intent="booking") if owner is None else fn(ctx, msg, route, owner)

    return handler


def _services_for(owner: Owner) -> str:
    return "、".join(s.name for s in catalogue().values() if owner.tier in s.tiers)


def _when_from(state: dict) -> When | None:
    if not state.get("start"):
        return None
    return When(start=datetime.fromisoformat(state["start"]), end=datetime.fromisoformat(state["end"]),
                has_time=state.get("has_time", False), part=state.get("part"), is_range=state.get("is_range", False),
                text=state.get("when_text") or "")


def _put_when(state: dict, w: When) -> None:
    state.update(start=w.start.isoformat(), end=w.end.isoformat(), has_time=w.has_time, part=w.part,
                 is_range=w.is_range, when_text=w.text)


def _location_for(svc: Service, owner: Owner) -> str | None:
    if svc.location == "home":
        return owner.room or None
    if svc.location == "venue":
        return svc.place
    return None


def _absorb(ctx: Context, owner: Owner, state: dict, text: str) -> tuple[bool, str | None]:
    """Take what this text says (service, time, place) into the state.
    Returns (understood anything, a refusal/problem to tell)."""
    understood = False
    names_place = re.search(r"地点|地址", text) is not None
    svc = None if names_place else find_service(text)  # "地点改成会所" is a place, not the 会所 service
    if svc and svc.key != state.get("service"):
        why = ops.refusal(ctx.session, owner, svc, ctx.now)
        if why:
            return True, why
        state["service"] = svc.key
        state["location"] = _location_for(svc, owner)
        understood = True
    w = parse_when(text, ctx.now)
    if w is not None:
        problem = ops.when_problem(w, ctx.now)
        if problem:
            return True, problem
        _put_when(state, w)
        understood = True
    # "地点改成会所" names a place for any service that is not at a fixed venue;
    # "在浦东机场" only where the place has to be asked anyway.
    m = re.search(r"(?:地点|地址)(?:改为|改成|改到|换成|是|在|:|：)*\s*(\S{2,40})", text) or (
        re.search(r"在([^\s，。,]{2,40})", text) if state.get("service")
        and catalogue()[state["service"]].location == "ask" else None)
    if state.get("service") and state.get("start") and not state.get("is_range"):
        w2 = _when_from(state)
        svc = catalogue()[state["service"]]
        problem = ops.slot_problem(svc, ops.start_time(w2, w2.day, svc), ctx.now)
        if problem:
            state.pop("start", None)
            return True, problem
    if m and parse_when(m.group(1), ctx.now) is not None and not names_place:
        m = None  # "在明天下午" is a time, not a place
    if m and state.get("service") and catalogue()[state["service"]].location != "venue":
        state["location"] = m.group(1)
        understood = True
    elif not understood and state.get("stage") == "where":
        state["location"] = text.strip()[:60]
        understood = True
    return understood, None


def _next_prompt(ctx: Context, owner: Owner, state: dict) -> str:
    if not state.get("service"):
        state["stage"] = "service"
        return f"请问您想预约哪项服务？您可以预约：{_services_for(owner)}。"
    svc = catalogue()[state["service"]]
    if not state.get("start"):
        state["stage"] = "when"
        return f"好的，预约「{svc.name}」。请问您希望什么时间？例如「明天下午三点」「下周六上午」「国庆期间」。"
    if not state.get("location"):
        state["stage"] = "where"
        return f"请问「{svc.name}」的服务地点是？"
    state["stage"] = "confirm"
    w = _when_from(state)
    when_txt = w.describe() if w.is_range else ops.fmt_dt(ops.start_time(w, w.day, svc))
    if w.is_range:
        when_txt += "（按最早可约的一天安排）"
    return (f"请确认预约：\n服务：{svc.name}\n时间：{when_txt}\n地点：{state['location']}\n"
            f"费用：{ops.quote_text(svc, owner.tier)}\n"
            f"回复「确认」提交；要修改直接告诉我（如「改到周六上午」）；回复「取消」放弃。")


def _reply(ctx: Context, msg: Message, state: dict, text: str, keep: bool = True, pushes=None) -> Outcome:
    if keep:
        conv = conversation.get(ctx.session, msg.sender, msg.chat, ctx.now, msg.group_id)
        if conv is None:
            conversation.start(ctx.session, msg.sender, msg.chat, "booking", state, ctx.now,
                               ttl=_ttl(), group_id=msg.group_id)
        else:
            conversation.update(ctx.session, conv, state, ctx.now, ttl=_ttl())
    else:
        conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
    return Outcome(replies=[text], pushes=list(pushes or []), intent="booking")


def _ttl() -> timedelta:
    return timedelta(minutes=TTL_MINUTES)


def start_booking(ctx: Context, msg: Message, text: str) -> Outcome:
    owner = _owner(ctx, msg)
    if owner is None:
        return Outcome(replies=[NOT_BOUND], intent="booking")
    state: dict = {"stage": "service", "misses": 0}
    _, problem = _absorb(ctx, owner, state, text)
    if problem and not state.get("service"):
        return _reply(ctx, msg, state, problem, keep=False)
    prompt = _next_prompt(ctx, owner, state)
    return _reply(ctx, msg, state, (problem + "\n" if problem else "") + prompt)


def _drops_draft(text: str) -> bool:
    """「算了不要保洁了」 while the booking is still being filled in: drop the draft
    (a bare booking number is not a "never mind")."""
    found = registry.match_text_command(basic(text), "private", "owner")
    return bool(found) and found[0].name == "booking_cancel_loose" and not found[1].group("n")


@capability.conversation("booking")
def continue_booking(ctx: Context, msg: Message, conv) -> Outcome | None:
    owner = _owner(ctx, msg)
    state = dict(conv.state)
    text = msg.text.strip()
    if owner is None:
        return _reply(ctx, msg, state, NOT_BOUND, keep=False)
    if QUIT.match(text) or _drops_draft(text):
        return _reply(ctx, msg, state, "好的，已取消本次预约。需要时随时回复「预约」。", keep=False)
    if state.get("stage") == "confirm" and YES.match(text):
        svc = catalogue()[state["service"]]
        w = _when_from(state)
        b, reply, pushes = ops.book(ctx.session, owner, svc, w, state["location"], ctx.now, w.text)
        if b is None:  # full or out of quota: stay in the exchange so the owner can pick another time
            state["stage"] = "when"
            state.pop("start", None)
            return _reply(ctx, msg, state, reply + "\n请告诉我其他时间，或回复「取消」。")
        return _reply(ctx, msg, state, reply, keep=False, pushes=pushes)
    understood, problem = _absorb(ctx, owner, state, text)
    if problem:
        return _reply(ctx, msg, state, problem + "\n" + _next_prompt(ctx, owner, state))
    if not understood:
        state["misses"] = state.get("misses", 0) + 1
        if state["misses"] >= 3 or registry.match_text_command(text, msg.chat, msg.role or "owner"):
            conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
            return None  # let the router take it (another command, or a new topic)
        return _reply(ctx, msg, state, "抱歉，我没有理解。" + _next_prompt(ctx, owner, state))
    return _reply(ctx, msg, state, _next_prompt(ctx, owner, state))


@capability.text_command("booking_start", r"^(?:我要|我想|我想要|帮我|请帮我|麻烦)?(?:预约|预定|预订)(?!记录)(?P<rest>.*)$",
                         intent="booking", chats=("private",), why="book a member service")
def cmd_book(ctx: Context, msg: Message, _route) -> Outcome:
    return start_booking(ctx, msg, msg.text)


PRIVATE_ONLY = "预约和会员信息涉及个人信息，请私信公众号「小区管家」办理，我们不在群里处理。"


@capability.intent("booking")
def on_booking_intent(ctx: Context, msg: Message, _route) -> Outcome:
    if msg.chat != "private":  # groups: never handle (or show) one owner's bookings in front of others
        return Outcome(replies=[PRIVATE_ONLY], intent="booking")
    return start_booking(ctx, msg, msg.text)


@capability.text_command("booking_cancel", r"^(?:我要|我想|帮我|请|麻烦)?取消(?:一下)?(?:[^，。,]{0,10}的)?(?:预约|预订)\s*(?:[Bb]?(?P<id>\d+))?[。!！]*$",
                         intent="booking",
                         chats=("private",), why="cancel a booking")
@_bound_owner
def cmd_cancel(ctx: Context, msg: Message, _route, owner: Owner) -> Outcome:
    # "取消明天的预约": without a number the day narrows it down.
    active = _which_bookings(ctx, owner, re.search(r"(?:预约|预订)\s*[Bb]?(\d+)", msg.text), msg.text)
    if not active:
        return Outcome(replies=["您目前没有可以取消的预约。"], intent="booking")
    if len(active) > 1:
        return Outcome(replies=["您有多个预约，请回复「取消预约 编号」：\n" + "\n".join(ops.describe(b) for b in active)],
                       intent="booking")
    b = active[0]
    pushes = ops.cancel(ctx.session, b, ctx.now, owner.openid or str(owner.id))
    return Outcome(replies=[f"已取消预约 {ops.describe(b)}。"], pushes=pushes, intent="booking")


def _which_bookings(ctx: Context, owner, number: re.Match | None, day_text: str) -> list:
    """The owner's active bookings the message means: the one numbered (B12), else
    those on the day `day_text` names when there are several (all when none match)."""
    active = ops.active_bookings(ctx.session, owner)
    if number:
        return [b for b in active if b.id == int(number.group(1))]
    if len(active) > 1:
        w = parse_when(day_text, ctx.now)
        if w is not None:
            return [b for b in active if b.day in w.days()] or active
    return active


@capability.text_command("booking_change",
                         r"^(?:能不能|可以|可不可以|帮我|请|麻烦)?(?:帮我)?(?:把)?(?:[^，。,]{0,10}的)?(?:预约|预订)?(?:改到|改期到?|改成|换到|改约到?|改时间到?)(?P<rest>.+)$",
                         intent="booking", chats=("private",), why="move a booking")
@_bound_owner
def cmd_change(ctx: Context, msg: Message, _route, owner: Owner) -> Outcome:
    # "把明天的预约改到后天": which booking is before the verb, the new time after it.
    parts = CHANGE_VERB.split(msg.text, maxsplit=1)
    before, after = (parts[0], parts[1]) if len(parts) == 2 else ("", msg.text)
    active = _which_bookings(ctx, owner, re.search(r"[Bb](\d+)", msg.text), before)
    if not active:
        return Outcome(replies=["您目前没有可以改期的预约。回复「预约」新建一个。"], intent="booking")
    if len(active) > 1:
        return Outcome(replies=["您有多个预约，请说明编号，如「改到明天下午 B12」：\n" + "\n".join(ops.describe(b) for b in active)],
                       intent="booking")
    w = parse_when(re.sub(r"[Bb]\d+", "", after), ctx.now)
    if w is None:
        return Outcome(replies=["请告诉我新的时间，例如「改到下周六上午」。"], intent="booking")
    ok, text, pushes = ops.reschedule(ctx.session, active[0], w, ctx.now, owner.openid or str(owner.id))
    return Outcome(replies=[text], pushes=pushes, intent="booking")


@capability.text_command("booking_list", r"^(?:我的预约|查看预约|预约记录|查预约)[?？]*$", intent="booking",
                         chats=("private",), why="list my bookings")
@_bound_owner
def cmd_list(ctx: Context, msg: Message, _route, owner: Owner) -> Outcome:
    active = ops.active_bookings(ctx.session, owner)
    if not active:
        return Outcome(replies=["您目前没有进行中的预约。回复「预约」即可预约会员服务。"], intent="booking")
    names = {"requested": "待审核", "approved": "已通过", "contacted": "已确认"}
    return Outcome(replies=["您的预约：\n" + "\n".join(f"{ops.describe(b)}（{names[b.state]}）" for b in active)],
                   intent="booking")


@capability.text_command("booking_rate", r"^(?:评分|评价|打分)\s*(?P<score>[1-5])\s*分?(?P<comment>.*)$", intent="booking",
                         chats=("private",), why="rate a finished service")
@_bound_owner
def cmd_rate(ctx: Context, msg: Message, _route, owner: Owner) -> Outcome:
    m = re.match(r"^(?:评分|评价|打分)\s*([1-5])\s*分?(.*)$", msg.text.strip())
    text, pushes = ops.rate(ctx.session, owner, int(m.group(1)), ctx.now, m.group(2).strip() or None)
    return Outcome(replies=[text], pushes=pushes, intent="booking")


@capability.conversation("booking_rating")
def continue_rating(ctx: Context, msg: Message, conv) -> Outcome | None:
    """After a service: "5" or "4分 很准时" is the rating; anything else ends
    the wait and goes to normal routing."""
    conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
    m = re.match(r"^\s*([1-5])\s*分?\s*[，,。.、:：]?\s*(.*)$", msg.text, re.S)
    owner = _owner(ctx, msg)
    if not m or owner is None:
        return None
    text, pushes = ops.rate(ctx.session, owner, int(m.group(1)), ctx.now, m.group(2).strip() or None)
    return Outcome(replies=[text], pushes=pushes, intent="booking")


@capability.card("booking:")
def on_booking_card(ctx: Context, msg: Message, key: str) -> Outcome:
    parts = key.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        return Outcome(intent="event")
    text, pushes = ops.staff_action(ctx.session, parts[1], int(parts[2]), msg.sender, ctx.now,
                                    msg.data.get("ResponseCode"))
    return Outcome(replies=[text], pushes=pushes, intent="event")


from handlers.bookings import cancel  # noqa: E402,F401  (after 取消预约: registered later, checked later)

__all__ = ["check_booking_clocks", "start_booking"]
