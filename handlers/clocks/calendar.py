"""The calendar family of the clock engine: the obligations of RULES.md that recur on
the calendar rather than run against a deadline (O12 warranty, O13 greetings and
birthdays, O14 bills, O15 arrears, O16 census, O17 survey, O18 forum, O19 reviews).

Policies: `handlers/data/calendar_clocks.yaml` (the one policy format with a
`calendar:` rule, `tell` and `does`; handlers/clocks/policy.py). Rows: the one
`clocks` table, family "calendar", one per running obligation: `community` for
the standing ones, `owner:<id>` / `home:<id>` for those that run for a subject
while a condition holds (in arrears, a warranty ending, a birthday on file). The engine's one check
(`check_due`) starts the missing rows (`start_due`) and fires them (`occur`).

What a policy *does* and which subjects a start event finds are registered by the
capability that owns the words and the data, so this module never imports them:

    calendar.action("bills")(fn)          # fn(occ: engine.Occurrence) -> list[Push]
    calendar.source("in_arrears", Source(candidates=..., anchor=...))
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Callable

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from ground import rules
from handlers import load_capabilities
from handlers.clocks import engine
from handlers.clocks.policy import ClockSpec, Step, parse_clocks
from handlers.message import Push
from store.models import Clock

POLICY_FILE = Path(__file__).resolve().parent.parent / "data" / "calendar_clocks.yaml"

# Start and stop events of the calendar family: `installed` = the policy is in the file
# (one row, subject `community`); the others are conditions a registered source finds.
EVENTS = ("installed", "removed", "in_arrears", "paid", "warranty_ending", "warranty_ended", "birthday_known",
          "birthday_removed")
# Who a recurring policy may tell (its action sends to them).
TELLS = ("owner", "home_owners", "building_agent", "everyone", "customer_service", "supervisor", "manager")
COMMUNITY = "community"


@dataclass(frozen=True)
class Start:
    """A subject a source found that should have a running row."""

    subject: str
    anchor: date | None = None  # the date the rule counts from
    owner_id: int | None = None


@dataclass(frozen=True)
class Source:
    """Where the subjects of a start event come from.
    `candidates(session, spec, now)`: subjects that may need a row now, without the ones
    already running or done for the same date (`without_clock`: the check runs every
    minute, so in the steady state this is one query with an empty answer);
    `anchor(session, row, now)`: the subject's date now, None when the condition is over
    (the row stops with the policy's stop event)."""

    candidates: Callable[[Session, ClockSpec, datetime], list[Start]]
    anchor: Callable[[Session, Clock, datetime], date | None]


Action = Callable[[engine.Occurrence], list[Push]]
_ACTIONS: dict[str, Action] = {}
_SOURCES: dict[str, Source] = {}


def action(name: str) -> Callable[[Action], Action]:
    """Register what a policy's `does: name` runs at each occurrence (once per name)."""
    def register(fn: Action) -> Action:
        old = _ACTIONS.get(name)
        if old is not None and old is not fn and _qualname(old) != _qualname(fn):
            raise ValueError(f"calendar action '{name}' is registered twice ({_qualname(old)}, {_qualname(fn)})")
        _ACTIONS[name] = fn
        return fn
    return register


def source(event: str, src: Source) -> Source:
    """Register where the subjects of start event `event` come from."""
    if event not in EVENTS:
        raise ValueError(f"calendar source for unknown event '{event}' (known: {', '.join(EVENTS)})")
    _SOURCES[event] = src
    return src


def without_clock(spec: ClockSpec, subject: ColumnElement[str] | None = None, anchor: ColumnElement | None = None,
                  owner_id: ColumnElement[int] | None = None) -> ColumnElement[bool]:
    """A WHERE clause for a source's query: no running row of `spec` on the subject (given as
    `owner_id`, the cheap way for owners, or as a SQL expression of the `subject` string),
    nor (a once rule) any row for the same `anchor`. Uncorrelated NOT IN: the database reads
    the clocks once, not once per subject."""
    from sqlalchemy import and_, tuple_

    mine = (Clock.clock == spec.id, Clock.family == "calendar")
    if owner_id is not None:
        clause = owner_id.not_in(select(Clock.owner_id).where(*mine, Clock.state == "running",
                                                              Clock.owner_id.is_not(None)))
    else:
        clause = subject.not_in(select(Clock.subject).where(*mine, Clock.state == "running"))
    if anchor is not None and subject is not None and spec.calendar is not None and spec.calendar.kind == "before":
        clause = and_(clause, tuple_(subject, anchor).not_in(
            select(Clock.subject, Clock.anchor).where(*mine, Clock.anchor.is_not(None))))
    return clause


def _qualname(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"


# ---------------------------------------------------------------- the policy file

def _build(data, src: rules.Source) -> dict[str, ClockSpec]:
    data = data or {}
    specs = parse_clocks(data.get("calendar"), f"{src.name}: calendar", EVENTS, TELLS)
    load_capabilities()  # they register the actions and sources the policies name
    for i, spec in enumerate(specs):
        where = f"calendar[{i}] ({spec.id})"
        if spec.calendar is None:
            raise src.fail(where, "field calendar: a calendar obligation needs its calendar rule")
        if spec.does not in _ACTIONS:
            raise src.fail(where, f"field does: unknown action '{spec.does}' (known: {', '.join(sorted(_ACTIONS))})")
        if spec.start != "installed" and spec.start not in _SOURCES:
            raise src.fail(where, f"field start: no source finds '{spec.start}' subjects")
        if spec.calendar.anchored == (spec.start == "installed"):
            raise src.fail(where, "field calendar: a rule counted from a subject's date needs a subject's start event"
                           " (and a community one a calendar date)")
    return {s.id: s for s in specs}


POLICIES = rules.RuleFile(POLICY_FILE, build=_build)


def policies(path: Path | None = None) -> dict[str, ClockSpec]:
    """The calendar obligations by id, validated (`GUANJIA_CALENDAR_FILE` points at another
    file, as GUANJIA_SCHEDULE_FILE does for schedule.yaml)."""
    return POLICIES.get(path or os.environ.get("GUANJIA_CALENDAR_FILE") or POLICY_FILE)


def due_between(start: datetime, end: datetime, ids: list[str] | None = None) -> list[tuple[datetime, str]]:
    """(moment, policy id) of every time in (start, end] a calendar obligation may fire:
    what `guanjia schedule show` lists beside the scheduler's own jobs."""
    return sorted((t, pid) for pid, spec in policies().items() if ids is None or pid in ids
                  for t in spec.calendar.moments(start, end))


# ---------------------------------------------------------------- the family

class CalendarFamily:
    name = "calendar"
    late_state = "met"  # no deadline: a recurring clock is never late

    def policy(self, clock_id: str) -> ClockSpec:
        return policies()[clock_id]

    def spec(self, session: Session, row: Clock) -> ClockSpec | None:
        return policies().get(row.clock)

    def record(self, session: Session, row: Clock, action: str, now: datetime, **detail) -> None:
        """The row and `scheduler_reminders` (written by the engine) are the story."""

    def auto_stop(self, session: Session, row: Clock) -> bool:
        return False  # a subject's condition is looked at when an occurrence is due (`ended`)

    def ended(self, session: Session, row: Clock, spec: ClockSpec, now: datetime) -> bool:
        """A subject's row stops when its condition is over (paid: the policy's stop event)
        or its date moved (the source then starts the new round)."""
        if spec.start == "installed":
            return False
        current = _SOURCES[spec.start].anchor(session, row, now)
        if current == engine.anchor_of(row):
            return False
        row.state, row.stopped_at, row.next_step_at = "met", now, None
        row.detail = {**(row.detail or {}), "stopped_by": spec.stop[0] if current is None else "date_changed"}
        session.flush()
        return True

    def warn(self, session: Session, row: Clock, spec: ClockSpec, now: datetime) -> list[Push]:
        return []  # recurring clocks have no deadline to warn of

    def escalate(self, session: Session, row: Clock, spec: ClockSpec, step: Step, now: datetime) -> list[Push] | None:
        return []

    def occur(self, occ: engine.Occurrence) -> list[Push]:
        return _ACTIONS[occ.spec.does](occ)

    def start_due(self, session: Session, now: datetime) -> list[Clock]:
        specs = policies().values()
        for spec in specs:
            _replan_if_edited(session, spec, now)
        running = set(session.scalars(select(Clock.clock).where(
            Clock.family == "calendar", Clock.subject == COMMUNITY, Clock.state == "running")))
        started: list[Clock] = []
        for spec in specs:
            if spec.start == "installed":
                found = [] if spec.id in running else [Start(COMMUNITY)]
            else:
                found = _SOURCES[spec.start].candidates(session, spec, now)
            started += _start_missing(session, spec, found, now)
        return started


# Rows a policy starts in one check at most: the check is one write transaction, and on
# SQLite a long one makes the webhooks wait. A first check after a deploy (a birthday clock
# for every owner) is spread over a few minutes; the rest are found by the next checks.
START_BATCH = 100


def _start_missing(session: Session, spec: ClockSpec, found: list[Start], now: datetime) -> list[Clock]:
    """Start a row for each subject found without a running one (a `once` rule: not
    again for the same date), at most START_BATCH of them."""
    found = found[:START_BATCH]
    if not found:
        return []
    latest: dict[str, Clock] = {}
    for row in session.scalars(select(Clock).where(Clock.clock == spec.id, Clock.family == "calendar",
                                                   Clock.subject.in_([f.subject for f in found]))
                               .order_by(Clock.round)):
        latest[row.subject] = row
    out = []
    for f in found:
        last = latest.get(f.subject)
        if last is not None and (last.state == "running" or
                                 (spec.calendar.kind == "before" and engine.anchor_of(last) == f.anchor)):
            continue
        first = spec.calendar.first(now, f.anchor)
        if first is None:
            continue
        out.append(engine.start(session, "calendar", f.subject, spec, now, due_at=first,
                                round=0 if last is None else last.round + 1, owner_id=f.owner_id, anchor=f.anchor,
                                detail={"calendar": spec.calendar.key}))
    return out


def _replan_if_edited(session: Session, spec: ClockSpec, now: datetime) -> None:
    """The policy's calendar was edited (its rows keep the rule they were planned by; the
    oldest running one tells, one small query a minute): every running row waits for the
    new rule's next moment. An occurrence already recorded is not sent again (the engine's
    record is per period)."""
    key = spec.calendar.key
    oldest = session.scalar(select(Clock).where(Clock.clock == spec.id, Clock.family == "calendar",
                                                Clock.state == "running").order_by(Clock.id).limit(1))
    if oldest is None or (oldest.detail or {}).get("calendar") == key:
        return
    for row in session.scalars(select(Clock).where(Clock.clock == spec.id, Clock.family == "calendar",
                                                   Clock.state == "running")):
        nxt = spec.calendar.first(now, engine.anchor_of(row))
        if nxt is None:
            row.state, row.stopped_at = "met", now
        else:
            row.due_at = nxt
        row.detail = {**(row.detail or {}), "calendar": key}
    session.flush()


FAMILY = engine.register_family(CalendarFamily())
