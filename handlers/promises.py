"""What the bot promises owners about a person's answer, rendered from the clock
that keeps the promise (RULES.md O1: a consultation gets a first response within
member_clocks.yaml's minutes). Answers in handlers/data/intents.yaml write
`{handoff_promise}` instead of "10分钟内", so changing O1 changes what owners are
told, and the consultation inbox, its cards and the bot's replies say the same.

`handlers.membership.notify` is the one reader of member_clocks.yaml behind it.
"""
from __future__ import annotations


def o1_minutes() -> int:
    """O1's minutes (member_clocks.yaml through its one loader, re-read when the file changes)."""
    from handlers.membership.notify import service_policies

    return int(service_policies()["O1"].minutes)


def handoff_promise() -> str:
    """How soon a person answers a handed-off question: 「10分钟内」 from O1's policy."""
    from handlers.membership.notify import promise

    return promise("O1")


def render(text: str, **values: str) -> str:
    """An answer from intents.yaml with its placeholders filled: the promise
    (`{handoff_promise}`) always, the caller's own ones (`{options}`) as given."""
    return text.format(handoff_promise=handoff_promise(), **values)
