"""handle(): one message in, one Outcome out. The worker's only entry point."""
from __future__ import annotations

import logging

from handlers import conversation, load_capabilities, registry
from handlers.identity import resolve_role
from handlers.message import Context, Message, Outcome
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
        # image / location / voice without recognition: a capability may claim the kind.
        fn = registry.get_event_handler(f"__{msg.kind}__")
        if fn is not None:
            out = fn(ctx, msg, None)
            if out is not None:
                return _finish(ctx, msg, out)
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
    # A capability may take a routed message first (an owner waiting for a
    # person: the bot's "which one did you mean?" goes to that person instead).
    for routed in registry.routed_hooks():
        taken = routed(ctx, msg, result)
        if taken is not None:
            taken.route = taken.route or result.contract()
            return _finish(ctx, msg, taken)
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
    """Customer-group messages get two more steps from the groups capability:
    every message is seen by moderation (`__group_message__`), and replies become
    ready-to-send suggestions for the staff admin (`__group_replies__`), because
    no bot can post into a customer group (PLATFORM.md)."""
    if msg.chat not in ("vip", "building"):
        return out
    on_message = registry.get_event_handler("__group_message__")
    if on_message is not None:
        out = on_message(ctx, msg, out) or out
    if out.replies:
        on_replies = registry.get_event_handler("__group_replies__")
        if on_replies is not None:
            return on_replies(ctx, msg, out) or out
        log.warning("no group capability: %d replies to %s dropped", len(out.replies), msg.group_id)
        out.replies = []
    return out
