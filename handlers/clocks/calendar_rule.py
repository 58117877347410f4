"""The calendar rule of a recurring clock policy (RULES.md O12-O19): when it fires.

    calendar: {every: day, at: "08:33"}                    # every day
    calendar: {every: week, weekday: mon, at: "08:43"}     # every week on that day
    calendar: {every: month, day: 1, at: "09:17"}          # monthly on day N (clamped to the month's end)
    calendar: {every: quarter, month: 1, day: 5, at: "09:40"}   # the N-th month of each quarter, day N
    calendar: {every: year, at: "09:05"}                   # yearly on the subject's date (29 Feb: 28 Feb)
    calendar: {every: 15 days, at: "10:07"}                # from the subject's date, while the clock runs
    calendar: {once: 30 days before, at: "10:12"}          # once, N days before the subject's date

Times are the community's (`ground.clock.CST`). The *subject's date* (the anchor) is
what the family says the clock counts from: the first day in arrears, a warranty's
end, a birthday. Each occurrence has a *period* (what the firing is recorded under,
once): by default the day / ISO week / month / quarter / year of the occurrence,
`{anchor}#{n}` for the n-th window of `every N days`, `{anchor}` for `once`.
"""
from __future__ import annotations

import calendar as _cal
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from ground.clock import CST
from ground.rules import RulesError

UNITS = ("day", "week", "month", "quarter", "year")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FIELDS = {"every", "once", "at", "weekday", "day", "month"}
DEFAULT_PERIOD = {"day": "{day}", "week": "{week}", "month": "{month}", "quarter": "{quarter}", "year": "{year}",
                  "days": "{anchor}#{n}", "before": "{anchor}"}
_DAYS = re.compile(r"^(\d{1,4}) days?$")
_BEFORE = re.compile(r"^(\d{1,4}) days? before$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def yearly_date(anchor: date, year: int) -> date:
    """The anchor's day in `year` (29 February falls on 28 February in common years)."""
    if anchor.month == 2 and anchor.day == 29 and not _cal.isleap(year):
        return date(year, 2, 28)
    return anchor.replace(year=year)


@dataclass(frozen=True)
class CalendarRule:
    kind: str  # day / week / month / quarter / year / days (every N days) / before (once, N days before)
    at: time
    weekday: int = 0  # week: 0 = Monday
    day: int = 1  # month / quarter: day of the month
    month: int = 1  # quarter: 1..3, the month of the quarter
    days: int = 0  # days / before

    @property
    def anchored(self) -> bool:
        """Counts from a subject's date (one row per subject) rather than the calendar alone."""
        return self.kind in ("year", "days", "before")

    def _at(self, d: date) -> datetime:
        return datetime.combine(d, self.at, tzinfo=CST)

    def _on_or_after(self, d: date, anchor: date | None) -> date | None:
        """The first day >= d the rule fires on (before the time of day is looked at)."""
        if self.kind == "day":
            return d
        if self.kind == "week":
            return d + timedelta(days=(self.weekday - d.weekday()) % 7)
        if self.kind in ("month", "quarter"):
            y, m = d.year, d.month
            for _ in range(15):
                if self.kind == "month" or (m - 1) % 3 + 1 == self.month:
                    hit = date(y, m, min(self.day, _cal.monthrange(y, m)[1]))
                    if hit >= d:
                        return hit
                y, m = (y + 1, 1) if m == 12 else (y, m + 1)
            return None
        assert anchor is not None, "an anchored rule needs the subject's date"
        if self.kind == "year":
            hit = yearly_date(anchor, d.year)
            return hit if hit >= d else yearly_date(anchor, d.year + 1)
        if self.kind == "days":
            if d <= anchor:
                return anchor
            n = -(-(d - anchor).days // self.days)  # the next window's first day
            return anchor + timedelta(days=n * self.days)
        target = anchor - timedelta(days=self.days)  # before
        return target if target >= d else None

    def next_at(self, after: datetime, anchor: date | None = None) -> datetime | None:
        """The first occurrence strictly after `after` (None: the rule is done)."""
        d = after.astimezone(CST).date()
        for _ in range(3):
            hit = self._on_or_after(d, anchor)
            if hit is None:
                return None
            moment = self._at(hit)
            if moment > after:
                return moment
            d = hit + timedelta(days=1)
        return None

    def first(self, now: datetime, anchor: date | None = None) -> datetime | None:
        """When a clock started at `now` first fires. A window already open (in arrears
        for some days, inside a warranty's last month) fires at the next `at` of the day
        rule, as the daily check always did; None when it is already too late."""
        minute = now.replace(second=0, microsecond=0)
        if self.kind == "days" and anchor is not None and anchor <= now.astimezone(CST).date():
            return _daily(self.at, minute)
        if self.kind == "before" and anchor is not None:
            target = self._at(anchor - timedelta(days=self.days))
            hit = target if target >= minute else _daily(self.at, minute)
            return hit if hit.astimezone(CST).date() < anchor else None
        return self.next_at(minute - timedelta(microseconds=1), anchor)

    @property
    def key(self) -> str:
        """The rule in one string, kept on its rows: a different key means the policy was
        edited under them (the family re-plans them)."""
        return repr(self)

    def after(self, due: datetime, anchor: date | None = None) -> datetime | None:
        """The occurrence after the one due at `due` (None: a `once` rule is done)."""
        return None if self.kind == "before" else self.next_at(due, anchor)

    def period(self, at: datetime, anchor: date | None, template: str | None = None) -> str:
        """What the occurrence at `at` is recorded under (unique with the rule and subject)."""
        loc = at.astimezone(CST).date()
        year, week, _ = loc.isocalendar()
        n = (loc - anchor).days // self.days if self.kind == "days" and anchor else 0
        return (template or DEFAULT_PERIOD[self.kind]).format(
            day=loc.isoformat(), week=f"{year}-W{week:02d}", month=f"{loc.year}-{loc.month:02d}",
            quarter=f"{loc.year}Q{(loc.month - 1) // 3 + 1}", year=loc.year,
            anchor=anchor.isoformat() if anchor else "", n=n)

    def moments(self, start: datetime, end: datetime) -> list[datetime]:
        """Every moment in (start, end] the rule may fire: its own occurrences, or for a
        rule counted from subjects' dates every day at `at` (when the check finds them)."""
        rule = self if not self.anchored else CalendarRule(kind="day", at=self.at)
        out, t = [], rule.next_at(start)
        while t is not None and t <= end:
            out.append(t)
            t = rule.next_at(t)
        return out


def _daily(at: time, minute: datetime) -> datetime:
    today = datetime.combine(minute.astimezone(CST).date(), at, tzinfo=CST)
    return today if today >= minute else today + timedelta(days=1)


def parse_calendar(raw, where: str) -> CalendarRule:
    """A `calendar:` mapping; errors name `where` (file: entry) and the field."""
    where = f"{where}: field calendar"
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: a mapping like {{every: month, day: 1, at: \"09:17\"}} is needed")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise RulesError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(FIELDS))})")
    m = _HHMM.match(str(raw.get("at", "")))
    if not m:
        raise RulesError(f"{where}.at: a time like \"09:17\" is needed (got {raw.get('at')!r})")
    at = time(int(m.group(1)), int(m.group(2)))
    if ("every" in raw) == ("once" in raw):
        raise RulesError(f"{where}: exactly one of every / once is needed")
    if "once" in raw:
        b = _BEFORE.match(str(raw["once"]))
        if not b or set(raw) - {"once", "at"}:
            raise RulesError(f"{where}.once: only 'N days before' is known (got {raw['once']!r})")
        return CalendarRule(kind="before", at=at, days=int(b.group(1)))
    every = str(raw["every"])
    d = _DAYS.match(every)
    if d:
        if int(d.group(1)) < 1:
            raise RulesError(f"{where}.every: at least 1 day")
        return CalendarRule(kind="days", at=at, days=int(d.group(1)))
    if every not in UNITS:
        raise RulesError(f"{where}.every: {' / '.join(UNITS)} or 'N days' (got {every!r})")
    allowed = {"day": set(), "week": {"weekday"}, "month": {"day"}, "quarter": {"day", "month"}, "year": set()}[every]
    extra = sorted(set(raw) - {"every", "at"} - allowed)
    if extra:
        raise RulesError(f"{where}: field(s) {', '.join(extra)} do not apply to every {every}")
    wd = str(raw.get("weekday", "mon"))
    if wd not in WEEKDAYS:
        raise RulesError(f"{where}.weekday: {' / '.join(WEEKDAYS)} (got {wd!r})")
    return CalendarRule(kind=every, at=at, weekday=WEEKDAYS.index(wd), day=_bounded(raw, "day", 1, 31, where),
                        month=_bounded(raw, "month", 1, 3, where))


def _bounded(raw: dict, name: str, lo: int, hi: int, where: str) -> int:
    value = raw.get(name, 1)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RulesError(f"{where}.{name}: a whole number {lo}-{hi} is needed (got {value!r})")
    return value
