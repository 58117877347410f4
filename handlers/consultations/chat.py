"""How consultations plug into the chat: the handoff intent (nothing matched,
or the owner asked for a person), staff commands in the WeCom app
(`回复 C12 ...`, `接手 C12`, `关闭 C12`, `我的咨询`), the card's buttons
("consult:take:12", "consult:close:12") and, after 「我来回复」, the staff
member's next plain message as the reply."""
from __future__ import annotations

import re
from datetime import timedelta

from handlers import conversation, registry
from handlers.consultations import core
from handlers.consultations.capability import capability
from handlers.identity import find_owner
from handlers.message import Context, Message, Outcome, Push
from handlers.route_result import RouteResult
# The understanding capability's handoff handler: ours takes it over (said
# explicitly, `replaces=` below); groups and other chats keep it, private OA
# handoffs become cases here.
from handlers.normalize import basic
from handlers.understanding import on_handoff as understanding_handoff
from handlers.understanding import record_miss

REPLY_CONV = "consult_reply"
REPLY_TTL = timedelta(minutes=30)
STAFF = ("staff",)


def _record_miss(ctx: Context, msg: Message, route) -> None:
    """The KB's list of unanswered questions still gets the question."""
    if isinstance(route, RouteResult) and route.why and not route.why.startswith("asked for a person"):
        record_miss(ctx, msg, route, "handoff")


def hand_over(ctx: Context, msg: Message, topic: str = "人工咨询") -> Outcome:
    owner = find_owner(ctx.session, msg)
    reply, pushes = core.handoff(ctx.session, msg, owner, ctx.now, topic=topic)
    return Outcome(replies=[reply], pushes=pushes, intent="handoff")


@capability.intent("handoff", replaces=understanding_handoff)
def on_handoff(ctx: Context, msg: Message, route) -> Outcome:
    if msg.chat == "staff":
        return Outcome(replies=["没有识别这条指令。回复「帮助」查看工作人员可用的指令。"], intent="handoff")
    if msg.chat != "private" or msg.channel not in ("mp", "cli"):
        return understanding_handoff(ctx, msg, route)
    _record_miss(ctx, msg, route)
    return hand_over(ctx, msg)


def _reply_out(res: core.Result) -> Outcome:
    return Outcome(replies=[res.message], pushes=list(res.pushes), intent="command")


@capability.text_command("consult_reply", r"^回复\s*[Cc]?\s*(?P<n>\d+)(?:\s*[,，:：]?\s*(?P<text>.*))?$",
                         chats=STAFF, roles=STAFF, why="staff answer an owner's consultation")
def cmd_reply(ctx: Context, msg: Message, route) -> Outcome:
    # The reply text from the message as typed, not the router's normalized copy:
    # full-width punctuation (，。！) must reach the owner unchanged.
    m = re.match(r"^\s*回复\s*[Cc]?\s*(\d+)\s*[,，:：]?\s*(.*)$", msg.text or "", re.S)
    if m is None:
        return Outcome(replies=["格式：回复 C12 您的回复内容"], intent="command")
    if not m.group(2).strip():
        res = core.pick_up(ctx.session, int(m.group(1)), msg.sender, ctx.now)
        if res.ok:
            _start_reply(ctx, msg, res.case.id)
        return _reply_out(res)
    return _reply_out(core.reply(ctx.session, int(m.group(1)), msg.sender, m.group(2), ctx.now))


@capability.text_command("consult_take", r"^(?:接手|认领|接咨询)\s*[Cc]\s*(?P<n>\d+)$", chats=STAFF, roles=STAFF,
                         why="staff pick a consultation up")
def cmd_take(ctx: Context, msg: Message, route) -> Outcome:
    n = int(route.args["match"]["n"])
    res = core.pick_up(ctx.session, n, msg.sender, ctx.now)
    if res.ok:
        _start_reply(ctx, msg, n)
    return _reply_out(res)


@capability.text_command("consult_close", r"^(?:关闭|结束)(?:咨询)?\s*[Cc]\s*(?P<n>\d+)(?:\s+(?P<note>.*))?$",
                         chats=STAFF, roles=STAFF, why="staff close a consultation")
def cmd_close(ctx: Context, msg: Message, route) -> Outcome:
    a = route.args["match"]
    res = core.close(ctx.session, int(a["n"]), msg.sender, ctx.now, note=(a.get("note") or "").strip())
    return _reply_out(res)


@capability.text_command("consult_mine", r"^(?:我的咨询|待回复咨询|咨询列表)$", chats=STAFF, roles=STAFF,
                         why="staff list the consultations waiting for them")
def cmd_mine(ctx: Context, msg: Message, route) -> Outcome:
    rows = core.waiting_for(ctx.session, msg.sender)
    if not rows:
        return Outcome(replies=["目前没有等待您回复的咨询。"], intent="command")
    lines = [f"{c.number} {core.STATE_LABELS[c.state]}：{c.title}" for c in rows]
    return Outcome(replies=["待处理的咨询：\n" + "\n".join(lines) + "\n回复业主：回复 C编号 内容"], intent="command")


def _start_reply(ctx: Context, msg: Message, case_id: int) -> None:
    conversation.start(ctx.session, msg.sender, msg.chat, REPLY_CONV, {"case": case_id}, ctx.now, ttl=REPLY_TTL)


@capability.card("consult:")
def on_consult_card(ctx: Context, msg: Message, key: str) -> Outcome:
    parts = key.split(":")
    if len(parts) != 3 or not parts[2].isdigit() or msg.role != "staff":
        return Outcome(intent="event")
    action, n = parts[1], int(parts[2])
    if action == "take":
        res = core.pick_up(ctx.session, n, msg.sender, ctx.now)
        if res.ok:
            _start_reply(ctx, msg, n)
        label = f"{core.staff_name(ctx.session, res.case.holder)}已接手" if res.case and res.case.holder else "已处理"
    elif action == "close":
        res = core.close(ctx.session, n, msg.sender, ctx.now)
        label = "已关闭"
    else:
        return Outcome(intent="event")
    out = _reply_out(res)
    code = msg.data.get("ResponseCode")
    if code and res.case is not None:
        to = ",".join(u for u in (res.case.recipients or msg.sender).split("|") if u)
        out.pushes.append(Push(channel="wecom", recipient=to, kind="update_card",
                               payload={"response_code": code, "button": {"replace_name": label}}))
    return out


@capability.conversation(REPLY_CONV)
def on_staff_reply(ctx: Context, msg: Message, conv) -> Outcome | None:
    """After 「我来回复」 the staff member's next plain message is the answer. A
    command (接单 T3, 回复 C4 ...) is left to the router, the exchange stays."""
    text = (msg.text or "").strip()
    if registry.match_text_command(basic(text), msg.chat, msg.role or "staff"):
        return None
    if text in ("取消", "算了", "不回复了"):
        conversation.end(ctx.session, msg.sender, msg.chat)
        return Outcome(replies=["好的，已取消。需要时再「回复 C编号 内容」。"], intent="command")
    conversation.end(ctx.session, msg.sender, msg.chat)
    return _reply_out(core.reply(ctx.session, int(conv.state["case"]), msg.sender, text, ctx.now))


# Small talk that, from an owner with an open case, is a follow-up for its holder.
FOLLOW_UP_TALK = ("offtopic", "chitchat")


@capability.routed  # after the tickets' conduct check (capability order)
def on_routed(ctx: Context, msg: Message, route) -> Outcome | None:
    """An owner with an open case who says something the bot is unsure about
    (its "which one did you mean?"), or something it would call off-topic or chatter
    ("那位老师一节课收费多少" after asking for a piano teacher), is talking to a person:
    the message joins the case and reaches its holder instead of a menu or a polite
    "not our business". Greetings and thanks are not forwarded."""
    unsure = route.intent == "faq" and (route.args.get("clarify") or route.args.get("hedge"))
    talk = route.intent == "smalltalk" and route.args.get("talk") in FOLLOW_UP_TALK
    if msg.chat != "private" or route.handler or not (unsure or talk):
        return None
    if core.open_case(ctx.session, msg.sender) is None:
        return None
    return hand_over(ctx, msg)
