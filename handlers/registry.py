"""Where capabilities plug in, so the router and the worker need no edits when
one is added.

- `text_command(pattern, ...)`: exact phrases or regexes a capability owns
  ("我的工单", "接单 T123", "取消预约"); checked before the classifier.
- `intent_handler(intent)`: who handles a classified intent (complaint, booking...).
- `event_handler(event)`: platform events (template_card_event, change_external_chat...).
- `conversation_handler(name)`: continues a multi-turn exchange stored in
  `conversations`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Pattern

from handlers.message import Context, Message, Outcome

Handler = Callable[[Context, Message, "object"], Outcome]


@dataclass
class TextCommand:
    name: str
    pattern: Pattern[str]
    intent: str
    handler: Handler
    chats: tuple[str, ...]
    roles: tuple[str, ...]
    why: str


_text_commands: list[TextCommand] = []
_intent_handlers: dict[str, Handler] = {}
_event_handlers: dict[str, Handler] = {}
_conversation_handlers: dict[str, Handler] = {}


def text_command(name: str, pattern: str, *, intent: str = "command",
                 chats: tuple[str, ...] = ("private", "staff", "vip", "building"),
                 roles: tuple[str, ...] = ("owner", "admin", "staff"), why: str = ""):
    """Decorator: messages matching `pattern` (anchored at the start, after
    normalization) go to the decorated handler."""

    def deco(fn: Handler) -> Handler:
        _text_commands[:] = [c for c in _text_commands if c.name != name]
        _text_commands.append(TextCommand(name, re.compile(pattern), intent, fn, chats, roles, why or name))
        return fn

    return deco


def intent_handler(intent: str):
    def deco(fn: Handler) -> Handler:
        _intent_handlers[intent] = fn
        return fn

    return deco


def event_handler(event: str):
    def deco(fn: Handler) -> Handler:
        _event_handlers[event] = fn
        return fn

    return deco


def conversation_handler(name: str):
    def deco(fn: Handler) -> Handler:
        _conversation_handlers[name] = fn
        return fn

    return deco


def match_text_command(text: str, chat: str, role: str) -> tuple[TextCommand, re.Match] | None:
    for cmd in _text_commands:
        if chat in cmd.chats:
            m = cmd.pattern.match(text)
            if m:
                return cmd, m
    return None


def get_text_command(name: str) -> TextCommand | None:
    return next((c for c in _text_commands if c.name == name), None)


def get_intent_handler(intent: str) -> Handler | None:
    return _intent_handlers.get(intent)


def get_event_handler(event: str) -> Handler | None:
    return _event_handlers.get(event)


def get_conversation_handler(name: str) -> Handler | None:
    return _conversation_handlers.get(name)
