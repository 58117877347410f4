"""The one policy format of every clock (RULES.md O1-O20), parsed and validated.

A clock policy is one mapping, the same in every rule file that has clocks
(`handlers/data/clocks.yaml` for tickets, `member_clocks.yaml` for member
services and consultations):

    - id: on_site                 # unique within its family
      rule: O5                    # the RULES.md row it enforces
      title: 15分钟到场             # what people read (warnings, escalations)
      text: 第十一条：...           # optional: the rule's wording, quoted in escalations
      start: created              # the family's event that starts it
      stop: [on_site, completed]  # one event or a list: any of them stops it
      minutes: 15                 # exactly one of: minutes / working_days (end of the
                                  #   n-th official working day, chinesecalendar) /
                                  #   until: end_of_day
      warn_before: 5              # minutes before the deadline the holder is warned (0: never)
      holder: assignee            # who is warned: assignee / supervisor / callback
      escalation:                 # after the deadline, one step after another
        - {after: 0, to: [supervisor]}           # minutes after the deadline (first step)
        - {after: 15, to: [manager]}             # ... or after the previous step
        - {after: 5, to: [redispatch]}           # redispatch: the card to the next person on duty

`to` names roles the family resolves (assignee, supervisor, manager, callback)
or the action `redispatch`. Errors name the file, the entry and the field.

A *recurring* policy (the calendar obligations O12-O19, `handlers/data/calendar_clocks.yaml`)
is the same mapping with a calendar rule instead of a duration, who is told, what it does
when it fires and what the firing is recorded under:

    - id: arrears
      rule: O15
      title: 欠费跟进
      start: in_arrears           # the family's events (here: the check finds an owner in arrears)
      stop: paid
      calendar: {every: 15 days, at: "10:07"}   # handlers/clocks/calendar_rule.py
      tell: [owner, building_agent]
      does: arrears               # the action a capability registered (handlers/clocks/calendar.py)
      period: "{anchor}#{n}"      # optional: the record's period (default by the rule)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from ground.clock import CST
from handlers import calendar_cn
from ground.rules import RulesError
from handlers.clocks.calendar_rule import CalendarRule, parse_calendar

HOLDERS = ("assignee", "supervisor", "callback")
RECIPIENTS = ("assignee", "supervisor", "manager", "callback", "redispatch")
DURATIONS = ("minutes", "working_days", "until", "calendar")
RECURRING = {"tell", "does", "period"}  # only beside `calendar`
FIELDS = {"id", "rule", "title", "text", "start", "stop", *DURATIONS, "warn_before", "holder", "escalation",
          *RECURRING}


# A rule file with a clock (or a ticket roster) that cannot be used: the one rule-file
# error (ground/rules.py); the message names file, entry and field.
PolicyError = RulesError


@dataclass(frozen=True)
class Step:
    after: int  # minutes after the deadline (first step) or after the previous step
    to: tuple[str, ...]


@dataclass(frozen=True)
class ClockSpec:
    id: str
    rule: str
    title: str
    start: str
    stop: tuple[str, ...]
    minutes: int | None = None
    working_days: int | None = None
    until: str | None = None
    warn_before: int = 0
    escalation: tuple[Step, ...] = ()
    holder: str = "assignee"  # who is warned: assignee / supervisor / callback
    text: str = ""  # the rule's wording
    calendar: CalendarRule | None = None  # a recurring policy: when it fires (no deadline, no escalation)
    tell: tuple[str, ...] = ()  # recurring: who is told (the family's audiences)
    does: str = ""  # recurring: the registered action run at each occurrence
    period: str | None = None  # recurring: what an occurrence is recorded under (default by the rule)

    @property
    def within(self) -> str:
        """The promise in words, for replies and cards: 10分钟内 / 2小时内 / 3个工作日内 / 当天."""
        if self.minutes is not None:
            m = self.minutes
            return f"{m // 60}小时内" if m >= 60 and m % 60 == 0 else f"{m}分钟内"
        if self.working_days is not None:
            return f"{self.working_days}个工作日内"
        return "当天"

    def due(self, start: datetime) -> datetime:
        """The deadline of a clock started at `start`."""
        if self.minutes is not None:
            return start + timedelta(minutes=self.minutes)
        if self.working_days is not None:
            return calendar_cn.add_working_days(start, self.working_days)
        if self.calendar is not None:
            return self.calendar.first(start)
        return calendar_cn.end_of_day(start.astimezone(CST).date())  # until: end_of_day

    def warn_at(self, due: datetime) -> datetime | None:
        return due - timedelta(minutes=self.warn_before) if self.warn_before else None


def _int(raw: dict, name: str, where: str, default: int | None = None, least: int = 0) -> int | None:
    value = raw.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise PolicyError(f"{where}: field {name}: a whole number >= {least} is needed (got {value!r})")
    return value


def _step(raw, where: str) -> Step:
    if not isinstance(raw, dict) or set(raw) - {"after", "to"} or "to" not in raw:
        raise PolicyError(f"{where}: a step is {{after: minutes, to: [who]}}")
    to = raw["to"] if isinstance(raw["to"], list) else [raw["to"]]
    for who in to:
        if who not in RECIPIENTS:
            raise PolicyError(f"{where}: field to: unknown '{who}' (known: {', '.join(RECIPIENTS)})")
    if not to:
        raise PolicyError(f"{where}: field to: nobody to tell")
    return Step(after=_int(raw, "after", where, 0), to=tuple(to))


def parse_clock(raw, where: str, events: Iterable[str], tells: Iterable[str] = ()) -> ClockSpec:
    """One clock policy; `where` is "file: path[i]", `events` the family's start/stop events,
    `tells` who a recurring policy may tell."""
    events = tuple(events)
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: a clock must be a mapping")
    for name in ("id", "rule", "start", "stop"):
        if name not in raw:
            raise PolicyError(f"{where}: field '{name}' is missing")
    where = f"{where} ({raw['id']})"
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise PolicyError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(FIELDS))})")
    stop = raw["stop"] if isinstance(raw["stop"], list) else [raw["stop"]]
    for ev in [raw["start"], *stop]:
        if ev not in events:
            raise PolicyError(f"{where}: field start/stop: unknown event '{ev}' (known: {', '.join(events)})")
    if len([k for k in DURATIONS if raw.get(k) is not None]) != 1:
        raise PolicyError(f"{where}: exactly one of minutes / working_days / until / calendar is needed")
    if raw.get("calendar") is not None:
        return _recurring(raw, where, tuple(stop), tuple(tells))
    if set(raw) & RECURRING:
        raise PolicyError(f"{where}: field(s) {', '.join(sorted(set(raw) & RECURRING))} only go with calendar")
    if raw.get("until") not in (None, "end_of_day"):
        raise PolicyError(f"{where}: field until: only 'end_of_day' is known")
    if raw.get("holder", "assignee") not in HOLDERS:
        raise PolicyError(f"{where}: field holder: {' / '.join(HOLDERS)}")
    steps = raw.get("escalation") or []
    if not isinstance(steps, list):
        raise PolicyError(f"{where}: field escalation: a list of steps is needed")
    return ClockSpec(
        id=str(raw["id"]), rule=str(raw["rule"]), title=str(raw.get("title") or raw["id"]),
        start=raw["start"], stop=tuple(stop), minutes=_int(raw, "minutes", where, least=1),
        working_days=_int(raw, "working_days", where, least=1), until=raw.get("until"),
        warn_before=_int(raw, "warn_before", where, 0), holder=raw.get("holder", "assignee"),
        escalation=tuple(_step(s, f"{where}.escalation[{i}]") for i, s in enumerate(steps)),
        text=str(raw.get("text") or ""))


def _recurring(raw: dict, where: str, stop: tuple[str, ...], tells: tuple[str, ...]) -> ClockSpec:
    """A recurring policy: a calendar rule, who is told, the action; no deadline to escalate."""
    for name in ("warn_before", "holder", "escalation"):
        if name in raw:
            raise PolicyError(f"{where}: field {name}: a recurring (calendar) clock has no deadline to warn or escalate")
    tell = raw.get("tell") or []
    tell = tell if isinstance(tell, list) else [tell]
    if not tell:
        raise PolicyError(f"{where}: field tell: nobody to tell")
    for who in tell:
        if who not in tells:
            raise PolicyError(f"{where}: field tell: unknown '{who}' (known: {', '.join(tells)})")
    if not isinstance(raw.get("does"), str) or not raw["does"]:
        raise PolicyError(f"{where}: field does: the action to run is missing")
    return ClockSpec(id=str(raw["id"]), rule=str(raw["rule"]), title=str(raw.get("title") or raw["id"]),
                     start=raw["start"], stop=stop, calendar=parse_calendar(raw["calendar"], where),
                     tell=tuple(tell), does=raw["does"], period=raw.get("period"), text=str(raw.get("text") or ""))


def parse_clocks(raw, where: str, events: Iterable[str], tells: Iterable[str] = ()) -> tuple[ClockSpec, ...]:
    """A list of clock policies (ids unique within the list)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PolicyError(f"{where}: a list of clocks is needed")
    specs = tuple(parse_clock(c, f"{where}[{i}]", events, tells) for i, c in enumerate(raw))
    seen: set[str] = set()
    for s in specs:
        if s.id in seen:
            raise PolicyError(f"{where}: clock id '{s.id}' appears twice")
        seen.add(s.id)
    return specs
