"""Understand the Chinese dates and times owners type ("下周六上午", "下个月15号",
"明天下午三点", "国庆期间", "十点半", "今晚") relative to a given "now".

Pure functions, no I/O: `parse_when(text, now)` returns a `When` (a start and an
exclusive end in Asia/Shanghai, plus what was understood) or None.

Choices made for a booking context (documented because they are guesses):
- A bare hour 1-6 without 上午/凌晨 means the afternoon ("明天三点" = 15:00):
  nobody books a home service at 3 a.m.
- A weekday alone ("周六") is the next such day, today included; "这周六" is this
  Monday-based week's, "下周六" next week's.
- A day of the month alone ("15号") is this month's, or next month's once passed;
  a month-day without a year ("10月3日") is the next one to come.
- Holidays ("国庆期间") come from chinesecalendar, whose data ends in 2026; beyond
  it the fixed-date ones (元旦, 五一, 国庆) fall back to their usual span and the
  lunar ones (春节, 中秋, 端午, 清明) are not understood (None) rather than guessed.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Callable

from ground.clock import CST

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
NUM = r"[零〇一二两三四五六七八九十\d]{1,4}"

# Parts of the day: (start hour, end hour). Used for ranges and to shift clock hours.
PARTS = {
    "凌晨": (0, 6), "早上": (6, 9), "早晨": (6, 9), "清晨": (6, 9), "早": (6, 9), "上午": (8, 12),
    "中午": (12, 14), "午饭后": (13, 14), "下午": (13, 18), "傍晚": (17, 19), "晚上": (18, 22),
    "晚": (18, 22), "夜里": (20, 24), "夜间": (20, 24),
}
_PM_PARTS = {"下午", "傍晚", "晚上", "晚", "夜里", "夜间"}

_HOLIDAYS = {
    "国庆": "National Day", "十一": "National Day", "春节": "Spring Festival", "过年": "Spring Festival",
    "元旦": "New Year's Day", "五一": "Labour Day", "劳动节": "Labour Day", "清明": "Tomb-sweeping Day",
    "端午": "Dragon Boat Festival", "中秋": "Mid-autumn Festival",
}
_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5,
            "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}


@dataclass
class When:
    """What a phrase means: [start, end) in CST. `has_time` when a clock time
    was given; `part` the part of day; `is_range` when several days are meant."""

    start: datetime
    end: datetime
    has_time: bool = False
    part: str | None = None
    is_range: bool = False
    text: str = ""

    @property
    def day(self) -> date:
        return self.start.date()

    def days(self) -> list[date]:
        """Every calendar day the phrase covers (one for a plain date)."""
        out, d = [], self.start.date()
        last = (self.end - timedelta(microseconds=1)).date()
        while d <= last:
            out.append(d)
            d += timedelta(days=1)
        return out

    def describe(self) -> str:
        wk = "一二三四五六日"[self.start.weekday()]
        if self.is_range:
            last = (self.end - timedelta(microseconds=1)).date()
            return f"{self.start.month}月{self.start.day}日至{last.month}月{last.day}日"
        base = f"{self.start.month}月{self.start.day}日(周{wk})"
        if self.has_time:
            return f"{base} {self.start:%H:%M}"
        if self.part:
            return f"{base}{self.part}"
        return base


def cn_number(s: str) -> int | None:
    """'十五' -> 15, '二十三' -> 23, '两' -> 2, '08' -> 8; None if not a number."""
    if not s:
        return None
    if s.isdigit():
        return int(s)
    if "十" in s:
        left, _, right = s.partition("十")
        tens = _DIGITS.get(left, None) if left else 1
        ones = _DIGITS.get(right, None) if right else 0
        if tens is None or ones is None:
            return None
        return tens * 10 + ones
    if len(s) == 1 and s in _DIGITS:
        return _DIGITS[s]
    if all(c in _DIGITS for c in s):  # 二〇二六
        return int("".join(str(_DIGITS[c]) for c in s))
    return None


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").replace(" ", "").replace("：", ":")


def _add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    return date(d.year + y, m + 1, 1)


def _safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


# Holidays on fixed Gregorian dates, used where chinesecalendar has no data yet
# (its official 调休 arrangement is published each November): month, day, days.
_FIXED_HOLIDAYS = {"New Year's Day": (1, 1, 1), "Labour Day": (5, 1, 5), "National Day": (10, 1, 7)}


def _holiday_range(name: str, today: date) -> tuple[date, date] | None:
    """The next (or current) holiday: chinesecalendar's days when it knows the
    year, else the fixed-date span for 元旦/五一/国庆 (lunar ones: None)."""
    found = _holiday_from_library(name, today)
    if found is not None or name not in _FIXED_HOLIDAYS:
        return found
    m, d, n = _FIXED_HOLIDAYS[name]
    for year in (today.year, today.year + 1):
        first = date(year, m, d)
        last = first + timedelta(days=n - 1)
        if last >= today:
            return max(first, today), last
    return None


def _holiday_from_library(name: str, today: date) -> tuple[date, date] | None:
    """The next (or current) run of days chinesecalendar marks with this holiday;
    None when its data ends first."""
    import chinese_calendar as cc

    d = today
    for _ in range(400):
        try:
            off, hname = cc.get_holiday_detail(d)
        except NotImplementedError:  # beyond the library's data
            return None
        if off and hname == name:  # (False, name) is a make-up working day (调休)
            first = d
            while True:
                try:
                    off, prev = cc.get_holiday_detail(first - timedelta(days=1))
                except NotImplementedError:
                    break
                if not off or prev != name:
                    break
                first -= timedelta(days=1)
            last = d
            while True:
                try:
                    off, nxt = cc.get_holiday_detail(last + timedelta(days=1))
                except NotImplementedError:
                    break
                if not off or nxt != name:
                    break
                last += timedelta(days=1)
            return first, last
        d += timedelta(days=1)
    return None


# One small parser a way of naming a day; `_find_date` tries them in this order
# and the first that recognises the text wins. Each gets the match, the text and
# today, and returns (first day, last day or None, implied part of day) or None.
_Day = tuple[date, date | None, str | None]


def _holiday(m: re.Match, t: str, today: date) -> _Day | None:
    if m.group(1) == "十一" and re.search(r"十一(点|时|月|号|日)", t):
        return None  # 十一点 / 十一月: not the National Day holiday
    rng = _holiday_range(_HOLIDAYS[m.group(1)], today)
    return (rng[0], rng[1], None) if rng else None


def _next_such_day(today: date, year: int, mo: int, dd: int, roll: bool = True) -> date | None:
    """That day this year, or next year's when it has passed (and `roll`)."""
    d = _safe_date(year, mo, dd)
    if d and roll and d < today:
        d = _safe_date(year + 1, mo, dd)
    return d


def _slash_date(m: re.Match, t: str, today: date) -> _Day | None:
    d = _next_such_day(today, today.year, int(m.group(1)), int(m.group(2)))
    return (d, None, None) if d else None


def _month_day(m: re.Match, t: str, today: date) -> _Day | None:
    y = cn_number(m.group(1)) if m.group(1) else today.year
    mo, dd = cn_number(m.group(2)), cn_number(m.group(3))
    if not (y and mo and dd):
        return None
    d = _next_such_day(today, y, mo, dd, roll=not m.group(1))
    return (d, None, None) if d else None


def _part_of_month(m: re.Match, t: str, today: date) -> _Day | None:
    base = _add_months(today, 1) if m.group(1).startswith("下") else today.replace(day=1)
    which = m.group(2)
    if which == "初":
        return max(base, today), None, None
    if which == "中":
        return base.replace(day=15), None, None
    if which in ("底", "末"):
        return _add_months(base, 1) - timedelta(days=1), None, None
    d = _safe_date(base.year, base.month, cn_number(m.group(3)) or 0)
    return (d, None, None) if d else None


_DAY_WORDS = {"大后天": 3, "后天": 2, "明天": 1, "明日": 1, "明早": 1, "明晚": 1, "昨天": -1}
_DAY_PARTS = {"明早": "早上", "今早": "早上", "明晚": "晚上", "今晚": "晚上", "今夜": "晚上"}


def _day_word(m: re.Match, t: str, today: date) -> _Day | None:
    w = m.group(1)
    return today + timedelta(days=_DAY_WORDS.get(w, 0)), None, _DAY_PARTS.get(w)


def _weekday(m: re.Match, t: str, today: date) -> _Day | None:
    prefix, wd = m.group(1) or "", m.group(2)
    monday = today - timedelta(days=today.weekday())
    weeks = 2 if prefix.startswith("下下") else 1 if prefix.startswith("下") else 0
    d = monday + timedelta(days=7 * weeks + _WEEKDAY[wd])
    if not prefix:  # a bare 周三: the coming one (this weekend while it lasts)
        if wd == "末" and today.weekday() == 6:
            d = today
        elif d < today:
            d += timedelta(days=7)
    if wd != "末":
        return d, None, None
    return max(d, today), monday + timedelta(days=(d - monday).days // 7 * 7 + 6), None


def _days_later(m: re.Match, t: str, today: date) -> _Day | None:
    n = 0.5 if m.group(1) == "半" else cn_number(m.group(1))
    if n is None:
        return None
    unit = m.group(2)
    if unit in ("天", "日"):
        return today + timedelta(days=int(n)), None, None
    if unit == "月":
        d = _add_months(today, int(n))
        return _safe_date(d.year, d.month, today.day) or d, None, None
    return today + timedelta(days=int(7 * n)), None, None


def _day_of_month(m: re.Match, t: str, today: date) -> _Day | None:
    dd = cn_number(m.group(1))
    if not dd:
        return None
    d = _safe_date(today.year, today.month, dd)
    if d is None or d < today:
        nm = _add_months(today, 1)
        d = _safe_date(nm.year, nm.month, dd)
    return (d, None, None) if d else None


def _whole_week(m: re.Match, t: str, today: date) -> _Day | None:
    monday = today - timedelta(days=today.weekday())
    weeks = 2 if m.group(1).startswith("下下") else 1 if m.group(1).startswith("下") else 0
    first = monday + timedelta(days=7 * weeks)
    return max(first, today), first + timedelta(days=6), None


_DATE_PARSERS: tuple[tuple[re.Pattern, Callable[[re.Match, str, date], _Day | None]], ...] = (
    (re.compile(r"(国庆|十一|春节|过年|元旦|五一|劳动节|清明|端午|中秋)(节|期间|假期|长假|那几天|黄金周)*"), _holiday),
    (re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d/])"), _slash_date),
    (re.compile(rf"(?:({NUM})年)?({NUM})月({NUM})(?:日|号)?"), _month_day),
    (re.compile(rf"(下个?月|下月|这个?月|本月|当月)(初|中|底|末|({NUM})(?:号|日))"), _part_of_month),
    (re.compile(r"(大后天|后天|明天|明日|明早|明晚|今天|今日|今早|今晚|今夜|昨天)"), _day_word),
    (re.compile(r"(下下个?|下个?|这个?|本)?(?:周|星期|礼拜)(末|[一二三四五六日天1-7])"), _weekday),
    (re.compile(rf"({NUM}|半)个?(天|日|周|星期|礼拜|月)(?:之?后|以后)"), _days_later),
    (re.compile(rf"(?<![月\d])({NUM})(?:号|日)"), _day_of_month),
    (re.compile(r"(下下个?|下个?|这个?|本)(周|星期|礼拜)(?![一二三四五六日天末\d])"), _whole_week),
)


def _find_date(t: str, now: datetime) -> tuple[date | None, date | None, str | None, str]:
    """(first day, last day or None, implied part of day, matched text)."""
    today = now.astimezone(CST).date()
    for pattern, parse in _DATE_PARSERS:
        m = pattern.search(t)
        found = parse(m, t, today) if m else None
        if found:
            return found[0], found[1], found[2], m.group(0)
    return None, None, None, ""


def _find_time(t: str) -> tuple[time | None, str | None, str]:
    """(clock time, part of day, matched text)."""
    part = None
    for p in sorted(PARTS, key=len, reverse=True):
        if p in t and not (p == "早" and ("早上" in t or "早晨" in t)) and not (p == "晚" and "晚上" in t):
            part = p
            break
    m = re.search(r"(\d{1,2}):(\d{2})", t)
    hour = minute = None
    matched = ""
    if m:
        hour, minute, matched = int(m.group(1)), int(m.group(2)), m.group(0)
    else:
        m = re.search(rf"({NUM})(?:点|时)(钟)?(半|一刻|三刻|过?({NUM})分?)?", t)
        if m:
            hour = cn_number(m.group(1))
            tail = m.group(3) or ""
            minute = 30 if tail == "半" else 15 if tail == "一刻" else 45 if tail == "三刻" else (
                cn_number(m.group(4)) if m.group(4) else 0)
            matched = m.group(0)
    if hour is None or minute is None or hour > 24 or minute > 59:
        return None, part, ""
    if part in _PM_PARTS and hour < 12:
        hour += 12
    elif part == "中午" and hour <= 3:
        hour += 12
    elif part is None and 1 <= hour <= 6:
        hour += 12  # booking context: "三点" is the afternoon
    if hour == 24:
        hour = 0
    return time(hour, minute), part, matched


def _relative_time(t: str, now: datetime) -> tuple[datetime | None, str]:
    m = re.search(rf"({NUM}|半)个?(小时|钟头|分钟)(?:之?后|以后)", t)
    if not m:
        return None, ""
    n = 0.5 if m.group(1) == "半" else cn_number(m.group(1))
    if n is None:
        return None, ""
    delta = timedelta(hours=n) if m.group(2) in ("小时", "钟头") else timedelta(minutes=n)
    return (now.astimezone(CST) + delta).replace(second=0, microsecond=0), m.group(0)


def _span(t: str, now: datetime) -> When | None:
    """"10月1号到7号", "下周一到周三": two dates joined by 到/至 make a range."""
    m = re.search(r"^(.*?)(?<![改换调])(?:到|至|~|～)(.+)$", t)  # "改到" is a move, not a span
    if not m:
        return None
    first, _, _, a = _find_date(m.group(1), now)
    if first is None:
        return None
    right = m.group(2)
    if re.fullmatch(rf"({NUM})(?:号|日)\S*", right) and "月" in m.group(1):  # "10月1号到7号": same month
        right = f"{first.month}月{right}"
    elif re.fullmatch(r"(?:周|星期|礼拜)[一二三四五六日天1-7]\S*", right):  # "下周一到周三": same week
        prefix = re.match(r"(下下个?|下个?|这个?|本)?", m.group(1)).group(0)
        right = prefix + right
    last, _, _, b = _find_date(right, now)
    if last is None or last <= first:
        return None
    return When(datetime.combine(first, time(0), CST), datetime.combine(last + timedelta(days=1), time(0), CST),
                is_range=True, text=f"{a}到{b}")


def parse_when(text: str, now: datetime) -> When | None:
    """The date/time a Chinese phrase means, relative to `now`; None if none found."""
    t = _norm(text)
    span = _span(t, now)
    if span is not None:
        return span
    local_now = now.astimezone(CST)
    rel, rel_text = _relative_time(t, now)
    if rel is not None:
        return When(rel, rel + timedelta(hours=1), has_time=True, text=rel_text)

    first, last, implied_part, dtext = _find_date(t, now)
    clock_t, part, ttext = _find_time(t)
    part = part or implied_part
    if first is None and clock_t is None and part is None:
        return None

    if first is None:
        first = local_now.date()
        if clock_t is not None and datetime.combine(first, clock_t, CST) <= local_now:
            first += timedelta(days=1)
        elif clock_t is None and part and local_now.hour >= PARTS[part][1]:
            first += timedelta(days=1)

    matched = "".join(x for x in (dtext, ttext) if x)
    if last is not None and last > first and clock_t is None:
        start = datetime.combine(first, time(0), CST)
        end = datetime.combine(last + timedelta(days=1), time(0), CST)
        return When(start, end, part=part, is_range=True, text=matched or dtext)
    if clock_t is not None:
        start = datetime.combine(first, clock_t, CST)
        return When(start, start + timedelta(hours=1), has_time=True, part=part, text=matched)
    if part is not None:
        h0, h1 = PARTS[part]
        start = datetime.combine(first, time(h0), CST)
        end = datetime.combine(first, time(0), CST) + timedelta(hours=h1)
        return When(start, end, part=part, text=matched or part)
    start = datetime.combine(first, time(0), CST)
    return When(start, start + timedelta(days=1), text=matched)
