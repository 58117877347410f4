"""Where capabilities plug in, so the router and the worker need no edits when
one is added. A capability registers through its `Capability` object
(`handlers/capability.py`), which calls these with its name as the owner.

- `text_command(pattern, ...)`: exact phrases or regexes a capability owns
  ("我的工单", "接单 T123", "取消预约"); checked before the classifier.
- `intent_handler(intent)`: who handles a classified intent (complaint, booking...).
- `event_handler(event)`: platform events (template_card_event, change_external_chat...).
- `conversation_handler(name)`: continues a multi-turn exchange stored in
  `conversations`.
- `routed_hook(fn)`: sees every routed text before its handler (several may;
  called in registration order, the first that returns an Outcome takes it).

A name is registered once: a second registration raises `DuplicateRegistration`
naming both registrants, never silently replaces the first. A capability that
takes over another's handler says so (`replaces=` the function it replaces).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Pattern

from handlers.message import Context, Message, Outcome

Handler = Callable[[Context, Message, "object"], Outcome]


class DuplicateRegistration(ValueError):
    """The same name registered twice (an intent, a command, an event, a job...)."""

    def __init__(self, kind: str, name: str, first: str, second: str) -> None:
        super().__init__(f"{kind} {name!r} registered twice: by {first} and by {second}")
        self.kind, self.name, self.first, self.second = kind, name, first, second


def registrant(fn: object, owner: str | None = None) -> str:
    """Who registered `fn`, for error messages: "module.function (capability x)"."""
    where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    return f"{where} (capability {owner})" if owner else where


@dataclass
class TextCommand:
    name: str
    pattern: Pattern[str]
    intent: str
    handler: Handler
    chats: tuple[str, ...]
    roles: tuple[str, ...]
    why: str
    owner: str | None = None


class Table:
    """name -> (handler, owner). `add` raises on a second registration of a name,
    unless the same function registers again (a module imported twice) or the
    caller names the function it replaces."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.items: dict[str, tuple[Callable, str | None]] = {}

    def add(self, name: str, fn: Callable, owner: str | None = None, replaces: Callable | None = None) -> None:
        old = self.items.get(name)
        if replaces is not None:
            if old is None or old[0] is not replaces:
                have = registrant(*old) if old else "nothing"
                raise ValueError(f"{registrant(fn, owner)} replaces {registrant(replaces)} for {self.kind} "
                                 f"{name!r}, but {have} is registered there (capability order?)")
        elif old is not None and not _same(old[0], fn):
            raise DuplicateRegistration(self.kind, name, registrant(*old), registrant(fn, owner))
        self.items[name] = (fn, owner)

    def get(self, name: str) -> Callable | None:
        found = self.items.get(name)
        return found[0] if found else None

    def remove(self, name: str) -> None:
        self.items.pop(name, None)


def _same(a: Callable, b: Callable) -> bool:
    """The same function, even re-created by a re-import of its module."""
    return a is b or (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == \
        (getattr(b, "__module__", None), getattr(b, "__qualname__", None))


_text_commands: list[TextCommand] = []
_intents = Table("intent handler")
_events = Table("event handler")
_conversations = Table("conversation handler")
_routed: list[tuple[Handler, str | None]] = []


def text_command(name: str, pattern: str, *, intent: str = "command",
                 chats: tuple[str, ...] = ("private", "staff", "vip", "building"),
                 roles: tuple[str, ...] = ("owner", "admin", "staff"), why: str = "", owner: str | None = None):
    """Decorator: messages matching `pattern` (anchored at the start, after
    normalization) go to the decorated handler."""

    def deco(fn: Handler) -> Handler:
        old = get_text_command(name)
        if old is not None:
            if not _same(old.handler, fn):
                raise DuplicateRegistration("text command", name, registrant(old.handler, old.owner),
                                            registrant(fn, owner))
            _text_commands.remove(old)
        _text_commands.append(TextCommand(name, re.compile(pattern), intent, fn, chats, roles, why or name, owner))
        return fn

    return deco


def intent_handler(intent: str, *, owner: str | None = None, replaces: Handler | None = None):
    def deco(fn: Handler) -> Handler:
        _intents.add(intent, fn, owner, replaces)
        return fn

    return deco


def event_handler(event: str, *, owner: str | None = None, replaces: Handler | None = None):
    def deco(fn: Handler) -> Handler:
        _events.add(event, fn, owner, replaces)
        return fn

    return deco


def conversation_handler(name: str, *, owner: str | None = None):
    def deco(fn: Handler) -> Handler:
        _conversations.add(name, fn, owner)
        return fn

    return deco


def routed_hook(fn: Handler | None = None, *, owner: str | None = None):
    """Decorator: fn(ctx, msg, route) -> Outcome | None sees a routed text first."""

    def deco(f: Handler) -> Handler:
        _routed[:] = [(h, o) for h, o in _routed if not _same(h, f)] + [(f, owner)]
        return f

    return deco(fn) if fn is not None else deco


def match_text_command(text: str, chat: str, role: str) -> tuple[TextCommand, re.Match] | None:
    for cmd in _text_commands:
        if chat in cmd.chats:
            m = cmd.pattern.match(text)
            if m:
                return cmd, m
    return None


def get_text_command(name: str) -> TextCommand | None:
    return next((c for c in _text_commands if c.name == name), None)


def remove_text_command(name: str) -> None:
    """Tests only: take back a command they registered."""
    _text_commands[:] = [c for c in _text_commands if c.name != name]


def get_intent_handler(intent: str) -> Handler | None:
    return _intents.get(intent)


def get_event_handler(event: str) -> Handler | None:
    return _events.get(event)


def get_conversation_handler(name: str) -> Handler | None:
    return _conversations.get(name)


def routed_hooks() -> list[Handler]:
    return [h for h, _ in _routed]
