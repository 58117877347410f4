"""The one source of "now" for business logic.

Every clock of RULES.md is computed from `now()`, so tests swap in a
`FrozenClock` and move time by hand. Times are timezone-aware; the community
lives in Asia/Shanghai, the database stores UTC.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

CST = ZoneInfo("Asia/Shanghai")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            start = start.replace(tzinfo=CST)
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when if when.tzinfo else when.replace(tzinfo=CST)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now = self._now + (delta or timedelta(**kwargs))
        return self._now


def _initial_clock():
    # GUANJIA_FAKE_NOW lets multi-process tests and demos run at a chosen moment.
    fake = os.environ.get("GUANJIA_FAKE_NOW")
    if fake:
        return FrozenClock(datetime.fromisoformat(fake))
    return SystemClock()


_clock = _initial_clock()


def now() -> datetime:
    """Aware current time (UTC for the system clock)."""
    return _clock.now()


def local_now() -> datetime:
    """Current time in the community's timezone."""
    return now().astimezone(CST)


def set_clock(clock) -> None:
    global _clock
    _clock = clock


def get_clock():
    return _clock
