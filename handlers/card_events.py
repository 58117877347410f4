"""One owner for the WeCom `template_card_event`: routes a button click by the
prefix of its EventKey (or TaskId) to the capability that sent the card.

Capabilities register with `@card_events.prefix("ticket:")` ("booking:", "mod:"...)
instead of claiming the event themselves, so several can share it.
"""
from __future__ import annotations

import logging
from typing import Callable

from handlers import registry
from handlers.message import Context, Message, Outcome

log = logging.getLogger(__name__)

CardHandler = Callable[[Context, Message, str], Outcome]
_prefixes = registry.Table("card prefix")


def prefix(p: str, *, owner: str | None = None) -> Callable[[CardHandler], CardHandler]:
    """Decorator: clicks whose EventKey (or TaskId) starts with `p` go to fn(ctx, msg, key).
    A prefix is claimed once (a second claim raises)."""

    def deco(fn: CardHandler) -> CardHandler:
        _prefixes.add(p, fn, owner)
        return fn

    return deco


def find(key: str, task_id: str = "") -> CardHandler | None:
    # Longest prefix first so "ticket:x:" may refine "ticket:".
    for p in sorted(_prefixes.items, key=len, reverse=True):
        if key.startswith(p) or (task_id and task_id.startswith(p)):
            return _prefixes.get(p)
    return None


@registry.event_handler("template_card_event")
def on_template_card_event(ctx: Context, msg: Message, _route) -> Outcome:
    key = str(msg.data.get("EventKey") or "")
    task_id = str(msg.data.get("TaskId") or "")
    fn = find(key, task_id)
    if fn is None:
        log.info("card click %r (task %r) from %s: no capability claims it", key, task_id, msg.sender)
        return Outcome(intent="event")
    return fn(ctx, msg, key) or Outcome(intent="event")
