"""What the bot promises owners about a person's answer, rendered from the clock
that keeps the promise (RULES.md O1: a consultation gets a first response within
member_clocks.yaml's minutes). Answers in handlers/data/intents.yaml write
`{handoff_promise}` instead of "10分钟内", so changing O1 changes what owners are
told, and the consultation inbox, its cards and the bot's replies say the same.

`o1_minutes()` is the only place that knows where O1's minutes live.
"""
from __future__ import annotations


def o1_minutes() -> int:
    """O1's minutes (member_clocks.yaml, re-read when the file changes)."""
    from handlers.membership.notify import clock_config

    return int(clock_config()["clocks"]["O1"]["minutes"])


def within(minutes: int) -> str:
    """「10分钟内」, 「2小时内」, 「1小时30分钟内」."""
    h, m = divmod(int(minutes), 60)
    if not h:
        return f"{m}分钟内"
    return f"{h}小时内" if not m else f"{h}小时{m}分钟内"


def handoff_promise() -> str:
    """How soon a person answers a handed-off question: 「10分钟内」 from O1."""
    return within(o1_minutes())


def render(text: str, **values: str) -> str:
    """An answer from intents.yaml with its placeholders filled: the promise
    (`{handoff_promise}`) always, the caller's own ones (`{options}`) as given."""
    return text.format(handoff_promise=handoff_promise(), **values)
