"""Working days and holidays of the official Chinese calendar (chinesecalendar).

RULES.md counts some clocks in working days (O7: 3 working days, O11: one
working day); the State Council's schedule moves days around (a Saturday
becomes a working day, a Monday a holiday), so weekends alone are wrong.
chinesecalendar 1.11.0 has data only through 2026: beyond its range we fall
back to weekends-only and log a warning once, rather than stop every clock.

Other capabilities (scheduler, bookings) reuse this module.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from ground.clock import CST

log = logging.getLogger(__name__)
_warned_years: set[int] = set()


def is_working_day(day: date) -> bool:
    """True on an official working day (adjusted working days included)."""
    try:
        import chinese_calendar

        return bool(chinese_calendar.is_workday(day))
    except (NotImplementedError, ImportError) as exc:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning("no official holiday data for %s (%s); counting weekends only", day.year, exc)
        return day.weekday() < 5


def holiday_name(day: date) -> str | None:
    """The holiday's name (e.g. 'National Day') or None; None too outside the data range."""
    try:
        import chinese_calendar

        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        return name if on_holiday else None
    except (NotImplementedError, ImportError):
        return None


def next_working_day(day: date, include_today: bool = False) -> date:
    d = day if include_today else day + timedelta(days=1)
    while not is_working_day(d):
        d += timedelta(days=1)
    return d


def end_of_day(day: date) -> datetime:
    """Midnight after `day` in Shanghai: "by the end of that day"."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=CST)


def add_working_days(start: datetime, n: int) -> datetime:
    """The end of the n-th working day after `start`'s local date.

    "Within 3 working days" of a Tuesday request means by the end of Friday (if
    all are working days); the day of the request itself does not count, and a
    request made on a holiday is counted from the next working day.
    """
    d = start.astimezone(CST).date()
    for _ in range(max(n, 0)):
        d = next_working_day(d)
    return end_of_day(d)


def working_days_between(a: date, b: date) -> int:
    """Working days in (a, b]: how many working days have passed from a to b."""
    n, d = 0, a
    while d < b:
        d += timedelta(days=1)
        n += is_working_day(d)
    return n
