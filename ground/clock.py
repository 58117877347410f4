"""The one source of "now" for business logic.

Every clock of RULES.md is computed from `now()`, so tests swap in a
`FrozenClock` and move time by hand. Times are timezone-aware; the community
lives in Asia/Shanghai, the database stores UTC.
"""
from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from ground.config import get_settings

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


# --- the community's time, as people read it -----------------------------------------------

def zone() -> ZoneInfo:
    """The community's time zone (GUANJIA_TIMEZONE, validated by the settings)."""
    try:
        return ZoneInfo(get_settings().timezone)
    except Exception:  # no usable settings (a bare CLI call): the product's default
        return CST


def local(dt: datetime | None) -> datetime | None:
    return dt.astimezone(zone()) if dt is not None else None


def fmt_time(dt: datetime | date | None, fmt: str = "%m-%d %H:%M") -> str:
    """A time as the community reads it; dates as they are."""
    if dt is None:
        return ""
    if isinstance(dt, datetime):
        return dt.astimezone(zone()).strftime(fmt)
    return dt.strftime(fmt if "%H" not in fmt else "%Y-%m-%d")


def fmt_when(dt: datetime | None, at: datetime | None = None) -> str:
    """"18:01" today, "09-14 18:01" another day, "2025-09-14 18:01" another year."""
    if dt is None:
        return ""
    here, today = dt.astimezone(zone()), (at or now()).astimezone(zone())
    if (here.hour, here.minute) == (0, 0):  # a deadline at midnight is the end of the day before
        here -= timedelta(minutes=1)
        return here.strftime("%m-%d 24:00" if here.year == today.year else "%Y-%m-%d 24:00")
    if here.date() == today.date():
        return here.strftime("%H:%M")
    return here.strftime("%m-%d %H:%M" if here.year == today.year else "%Y-%m-%d %H:%M")
