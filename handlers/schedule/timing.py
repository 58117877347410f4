"""Time rules: quiet hours, the :00/:30 marks, periods (slots, quarters),
official holidays and festivals. Pure functions of a given moment."""
from __future__ import annotations

import calendar as _cal
from datetime import date, datetime, timedelta

from ground.clock import CST
from handlers.schedule.config import Schedule, get_schedule


def local(dt: datetime) -> datetime:
    return dt.astimezone(CST)


def in_quiet_hours(now: datetime, sched: Schedule | None = None) -> bool:
    s = sched or get_schedule()
    t = local(now).time()
    if s.quiet_start > s.quiet_end:  # spans midnight (21:00-08:00)
        return t >= s.quiet_start or t < s.quiet_end
    return s.quiet_start <= t < s.quiet_end


def quiet_ends(now: datetime, sched: Schedule | None = None) -> datetime:
    """The first moment at or after `now` outside quiet hours."""
    s = sched or get_schedule()
    if not in_quiet_hours(now, s):
        return now
    loc = local(now)
    end = loc.replace(hour=s.quiet_end.hour, minute=s.quiet_end.minute, second=0, microsecond=0)
    if end <= loc:
        end += timedelta(days=1)
    return end


def near_mark(now: datetime, sched: Schedule | None = None) -> bool:
    """Within the margin around :00 / :30, when WeCom's bulk traffic peaks."""
    s = sched or get_schedule()
    if not s.avoid_minutes or s.avoid_margin <= 0:
        return False
    loc = local(now)
    m = loc.minute + loc.second / 60
    for mark in s.avoid_minutes:
        d = min((m - mark) % 60, (mark - m) % 60)
        if d < s.avoid_margin:
            return True
    return False


def may_send(now: datetime, emergency: bool, sched: Schedule | None = None) -> bool:
    """Emergencies go at any time; everything else waits for daytime and off-mark minutes."""
    if emergency:
        return True
    return not in_quiet_hours(now, sched) and not near_mark(now, sched)


def next_send_time(now: datetime, emergency: bool, sched: Schedule | None = None) -> datetime:
    """When a paused non-emergency campaign may go on."""
    s = sched or get_schedule()
    t = quiet_ends(now, s)
    for _ in range(200):
        if may_send(t, emergency, s):
            return t
        t = (t + timedelta(seconds=30)).replace(microsecond=0)
    return t


def quarter_of(d: date) -> str:
    return f"{d.year}Q{(d.month - 1) // 3 + 1}"


def month_days(year: int, month: int) -> int:
    return _cal.monthrange(year, month)[1]


def slot_key(now: datetime, once_per: str | int | None) -> str | None:
    """The slot a job run belongs to: a second run in the same slot is refused."""
    if once_per is None:
        return None
    loc = local(now)
    if isinstance(once_per, int):
        return f"s{int(now.timestamp()) // once_per * once_per}"
    if once_per == "minute":
        return loc.strftime("%Y-%m-%dT%H:%M")
    if once_per == "hour":
        return loc.strftime("%Y-%m-%dT%H")
    if once_per == "day":
        return loc.strftime("%Y-%m-%d")
    if once_per == "month":
        return loc.strftime("%Y-%m")
    return quarter_of(loc.date())


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    return date(y, m, min(d.day, month_days(y, m)))


def _holiday_detail(d: date) -> tuple[bool, str | None]:
    # The tickets developer's calendar module wraps chinesecalendar (and its
    # end of data); reuse it when present so the two never disagree.
    try:
        from handlers import calendar_cn  # type: ignore

        name = calendar_cn.holiday_name(d)
        return name is not None, name
    except (ImportError, AttributeError):
        pass
    try:
        import chinese_calendar

        return chinese_calendar.get_holiday_detail(d)
    except (NotImplementedError, ImportError):  # beyond the library's data
        return False, None


def holiday_starting(d: date) -> str | None:
    """The official holiday (chinesecalendar name) whose first day is `d`."""
    on, name = _holiday_detail(d)
    if not on or not name:
        return None
    _, prev = _holiday_detail(d - timedelta(days=1))
    return None if prev == name else name


def occasion(d: date, sched: Schedule | None = None) -> str | None:
    """What to greet owners for on `d`: a traditional festival, else the first
    day of an official holiday (unless that holiday's festival is greeted on its own day)."""
    s = sched or get_schedule()
    if d in s.festivals:
        return s.festivals[d]
    name = holiday_starting(d)
    if name and name in s.holiday_names and name not in s.holiday_defer:
        return s.holiday_names[name]
    return None
