"""handle(): one message in, one Outcome out. The worker's only entry point."""
from __future__ import annotations

import logging

from handlers import conversation, load_capabilities, registry
from handlers.identity import resolve_role
from handlers.message import Context, Message, Outcome, Push
from handlers.router import route

log = logging.getLogger(__name__)
load_capabilities()


def handle(ctx: Context, msg: Message) -> Outcome:
    if msg.role is None:
        msg.role = resolve_role(ctx.session, msg)

    if msg.kind == "event":
        fn = registry.get_event_handler(msg.event or "")
        if fn is None:
            log.info("event %s from %s has no handler; recorded only", msg.event, msg.sender)
            return Outcome(intent="event")
        return fn(ctx, msg, None) or Outcome(intent="event")

    if msg.kind != "text":
        return Outcome(replies=["收到。目前我只能读懂文字，请用文字描述您的需要，或回复「人工」联系工作人员。"],
                       intent="handoff")

    conv = conversation.get(ctx.session, msg.sender, msg.chat, ctx.now, msg.group_id)
    if conv is not None:
        fn = registry.get_conversation_handler(conv.handler)
        if fn is not None:
            out = fn(ctx, msg, conv)
            if out is not None:  # None: the exchange let go of this message
                return _finish(ctx, msg, out)

    result = route(msg.text, msg.chat, msg.role)
    fn = None
    if result.handler:
        cmd = registry.get_text_command(result.handler)
        if cmd and msg.role not in cmd.roles:
            return _finish(ctx, msg, Outcome(replies=["抱歉，这个指令需要管理员或工作人员权限。"],
                                             intent=result.intent, route=result.contract()))
        fn = cmd.handler if cmd else None
    if fn is None:
        fn = registry.get_intent_handler(result.intent)
    if fn is not None:
        out = fn(ctx, msg, result)
    else:
        out = Outcome(replies=[result.answer] if result.answer else [])
    out.intent = out.intent or result.intent
    out.route = out.route or result.contract()
    return _finish(ctx, msg, out)


def _finish(ctx: Context, msg: Message, out: Outcome) -> Outcome:
    """In customer groups no bot can post (PLATFORM.md): replies become a
    ready-to-send suggestion for the group's staff admin."""
    out = (registry.get_event_handler("__group_message__") or (lambda c, m, o: o))(ctx, msg, out) or out if msg.chat in ("vip", "building") else out  # moderation, mutes (groups capability)
    if msg.chat in ("vip", "building") and out.replies:
        hook = registry.get_event_handler("__group_replies__")
        if hook is not None:
            return hook(ctx, msg, out) or out
        out.pushes.extend(Push(channel="wecom", recipient=f"group-admin:{msg.group_id}", kind="group_task",
                               payload={"group_id": msg.group_id, "text": r, "reply_to": msg.sender})
                          for r in out.replies)
        out.replies = []
    return out
