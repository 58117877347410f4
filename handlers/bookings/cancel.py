"""Cancelling a booking the way people say it: 「取消保洁」, 「取消那个」,
「算了不要保洁了」, or just 「B1」. The bot names the booking it understood and
asks to confirm (or which one, when several fit) before cancelling.

「取消预约 B1」 (exact) stays in handlers/bookings/__init__.py and cancels at once.
"""
from __future__ import annotations

import re
from datetime import timedelta

from handlers import conversation
from handlers.bookings import ops
from handlers.bookings.catalogue import catalogue
from handlers.identity import find_owner
from handlers.message import Context, Message, Outcome
from handlers.zh_datetime import parse_when
from handlers.bookings.capability import capability

CONFIRM_CONV = "booking_cancel_confirm"
CONFIRM_TTL = timedelta(minutes=30)
_VERBS = r"(?:取消|不要|不用|不约|不做|退掉|退订|撤销|撤掉)"
_THAT = r"(?:那个|这个|刚才那个|之前那个|上次那个|刚约的|刚才的)"
_YES = re.compile(r"^(?:确认|确定|是|是的|对|对的|好|好的|嗯|可以|行|确认取消|取消吧|取消|就这个)[。!！]*$")
_NO = re.compile(r"^(?:不|不用|不要|不取消|保留|算了|先不|先不取消|不了)[。!！]*$")
_NUMBER = re.compile(r"^[Bb]\s*(\d+)$")


def _keywords() -> list[str]:
    words = {w for svc in catalogue().values() for w in (svc.name, *svc.keywords)}
    return sorted(words, key=len, reverse=True)


def _pattern() -> str:
    kw = "|".join(re.escape(w) for w in _keywords())
    return (rf"^(?:算了|那就|那|哎)?[,，]?(?:我|帮我|请|麻烦)?(?:还是)?{_VERBS}(?:了|掉)?(?:一下)?"
            rf"(?P<day>[^，。,]{{0,6}}?的)?(?P<what>{_THAT}|{kw})(?:的?(?:预约|预订|服务))?(?:了|吧|啦|哈)?[。!！]*$"
            # 「保洁不要了」「那个预约取消吧」: the thing first, then the verb.
            rf"|^(?:算了|那就|那|哎)?[,，]?(?P<what2>{_THAT}|{kw})(?:的?(?:预约|预订|服务))?[,，]?(?:我|就|还是)?"
            rf"(?:不要|不用|不约|不做|取消|退掉|撤销)(?:了|吧|啦|掉)?[。!！]*$"
            rf"|^[Bb]\s*(?P<n>\d+)\s*(?:取消|不要了|不约了|不用了)?[。!！]*$")


def _service_of(word: str) -> str | None:
    for key, svc in catalogue().items():
        if word == svc.name or word in svc.keywords:
            return key
    return None


@capability.text_command("booking_cancel_loose", _pattern(), intent="booking", chats=("private",),
                         why="a cancellation said loosely, or a bare booking number: confirm which booking")
def cmd_cancel_loose(ctx: Context, msg: Message, route) -> Outcome:
    owner = find_owner(ctx.session, msg)
    if owner is None:
        return Outcome(replies=["还没有查到您的业主信息，请先绑定房屋（回复「绑定」）。"], intent="booking")
    a = (route.args or {}).get("match") or {} if route is not None else {}
    active = ops.active_bookings(ctx.session, owner)
    if a.get("n"):
        n = int(a["n"])
        rows = [b for b in active if b.id == n]
        if not rows:
            return Outcome(replies=[f"没有找到您的有效预约B{n}。回复「我的预约」查看。"], intent="booking")
    else:
        rows = active
        svc = _service_of(a.get("what") or a.get("what2") or "")
        if svc:
            rows = [b for b in rows if b.service == svc]
        if a.get("day"):
            w = parse_when(a["day"].rstrip("的"), ctx.now)
            if w is not None:
                rows = [b for b in rows if b.day in w.days()] or rows
        if not rows:
            name = catalogue()[svc].name if svc else ""
            return Outcome(replies=[f"您目前没有{name}的有效预约。回复「我的预约」查看全部。" if name
                                    else "您目前没有可以取消的预约。"], intent="booking")
    conversation.start(ctx.session, msg.sender, msg.chat, CONFIRM_CONV, {"ids": [b.id for b in rows]}, ctx.now,
                       ttl=CONFIRM_TTL)
    if len(rows) == 1:
        return Outcome(replies=[f"要取消预约 {ops.describe(rows[0])} 吗？回复「确认」取消，回复「不用」保留。"],
                       intent="booking")
    return Outcome(replies=["您有以下预约，要取消哪一个？回复编号（例如 B%d）：\n" % rows[0].id
                            + "\n".join(ops.describe(b) for b in rows)], intent="booking")


@capability.conversation(CONFIRM_CONV)
def on_confirm(ctx: Context, msg: Message, conv) -> Outcome | None:
    text = (msg.text or "").strip()
    ids = list((conv.state or {}).get("ids") or [])
    m = _NUMBER.match(text) or re.match(r"^第?(\d)个?$", text)
    chosen = None
    if m:
        k = int(m.group(1))
        chosen = k if k in ids else (ids[k - 1] if text.startswith("第") and 0 < k <= len(ids) else None)
        if chosen is None:
            return Outcome(replies=["请回复上面列出的预约编号，例如 B%d；回复「不用」保留。" % ids[0]], intent="booking")
    elif _YES.match(text) and len(ids) == 1:
        chosen = ids[0]
    elif _NO.match(text):
        conversation.end(ctx.session, msg.sender, msg.chat)
        return Outcome(replies=["好的，预约保留不变。"], intent="booking")
    if chosen is None:
        conversation.end(ctx.session, msg.sender, msg.chat)
        return None  # something else: the router has it
    conversation.end(ctx.session, msg.sender, msg.chat)
    owner = find_owner(ctx.session, msg)
    b = next((b for b in ops.active_bookings(ctx.session, owner) if b.id == chosen), None) if owner else None
    if b is None:
        return Outcome(replies=[f"预约B{chosen}已不能取消（可能已完成或已取消）。"], intent="booking")
    pushes = ops.cancel(ctx.session, b, ctx.now, owner.openid or str(owner.id))
    return Outcome(replies=[f"已取消预约 {ops.describe(b)}。"], pushes=pushes, intent="booking")
