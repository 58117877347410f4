"""The one clock engine: start, stop and fire every clock of RULES.md.

Rows live in one table (`store.models.Clock`); policies are data
(`handlers/clocks/policy.py`). What differs between tickets, member services
and consultations is a *family* (`Family` below, registered by the capability):
where a clock's policy is found, how a role becomes staff userids, the words of
a warning or an escalation, and where the story is recorded (ticket events,
the audit log). Everything else happens here, once:

- `start` / `stop` / `cancel` / `on_event` are what a capability calls;
- `check_due(session, now)` is the one place that fires clocks (the scheduler's
  `deadlines` job, every minute): warnings due, deadlines passed, escalation steps
  due. Each miss is recorded once (`clock_breached`, with `breached_at` on the
  row); each warning and step once (`warned_at`, `level` on the row, in the same
  transaction as the record) and every push carries a dedup key, so a re-run or
  a retry produces nothing twice.
- A *recurring* policy (a calendar rule, `ClockSpec.calendar`: the calendar
  obligations O12-O19) has no deadline: its row's `due_at` is the next occurrence.
  `check_due` first lets each recurring family start the rows it finds missing
  (`RecurringFamily.start_due`), then fires each occurrence due, in a savepoint of
  its own: the subject's condition looked at (`ended`), the occurrence recorded once
  per period (`scheduler_reminders`, unique rule + subject + period, in the same
  transaction), the family's action run (`occur`), and the row moved on to the next
  occurrence (or `met` when the rule is done). One found over `CATCH_UP` late is
  skipped, not sent late.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Iterable, Protocol

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from handlers import load_capabilities
from handlers.clocks.policy import ClockSpec, Step
from handlers.message import Push
from store.models import Reminder
from store.models.clocks import ACTIVE_STATES, Clock

log = logging.getLogger(__name__)


class Family(Protocol):
    """What a capability tells the engine about its clocks."""

    name: str  # the `family` column (ticket / service)
    late_state: str  # how a clock stopped after its deadline is recorded (late / breached_met)

    def spec(self, session: Session, row: Clock) -> ClockSpec | None:
        """The policy of a running row (None: no longer in the policy: the clock is cancelled)."""

    def policy(self, clock_id: str) -> ClockSpec:
        """The policy named `clock_id` (for `start` by name)."""

    def record(self, session: Session, row: Clock, action: str, now: datetime, **detail) -> None:
        """Write `action` (clock_started / clock_warned / clock_breached / clock_escalated /
        clock_met / clock_late / clock_cancelled) where the family keeps its story."""

    def auto_stop(self, session: Session, row: Clock) -> bool:
        """A clock whose stop event is a fact in the store (e.g. a message really sent):
        stop the row and return True, else False."""

    def warn(self, session: Session, row: Clock, spec: ClockSpec, now: datetime) -> list[Push]:
        """The warning before the deadline (recorded by the family)."""

    def escalate(self, session: Session, row: Clock, spec: ClockSpec, step: Step, now: datetime) -> list[Push] | None:
        """One escalation step (recorded by the family); None = nothing could be done
        (a redispatch with nobody left): the engine takes the next step at once."""


@dataclass
class Occurrence:
    """One firing of a recurring clock, as its action sees it."""

    session: Session
    row: Clock
    spec: ClockSpec
    at: datetime  # when the occurrence was due (labels the period even when it fires late)
    now: datetime
    period: str  # what it is recorded under (once)
    anchor: date | None  # the subject's date it counts from (None: the calendar alone)
    detail: dict = field(default_factory=dict)  # the action adds what the record keeps


class RecurringFamily(Family, Protocol):
    """A family whose policies recur (calendar rules): it starts its own rows."""

    def start_due(self, session: Session, now: datetime) -> list[Clock]:
        """Start the rows that should be running and are not (a new owner in arrears...)."""

    def ended(self, session: Session, row: Clock, spec: ClockSpec, now: datetime) -> bool:
        """Before an occurrence: the subject's condition is over (paid) or its date moved;
        the family has stopped the row (a new round starts when its source finds it again)."""

    def occur(self, occ: Occurrence) -> list[Push]:
        """Run the policy's action for this occurrence (already recorded as fired)."""


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Install a family (once: a second, different one under the same name raises)."""
    old = _FAMILIES.get(family.name)
    if old is not None and type(old) is not type(family):
        raise ValueError(f"clock family '{family.name}' is registered twice ({type(old).__name__}, {type(family).__name__})")
    _FAMILIES[family.name] = family
    return family


def family(name: str) -> Family | None:
    if name not in _FAMILIES:  # the capabilities register their families when imported
        load_capabilities()
    return _FAMILIES.get(name)


def _row_class(family_name: str) -> type[Clock]:
    for mapper in Clock.__mapper__.self_and_descendants:
        if mapper.polymorphic_identity == family_name:
            return mapper.class_
    raise ValueError(f"no clock model for family '{family_name}'")


# ---------------------------------------------------------------- start / stop

def find(session: Session, subject: str, clock: str, round: int | None = None) -> Clock | None:
    """The clock `clock` on `subject` (its latest round unless `round` is given)."""
    stmt = select(Clock).where(Clock.subject == subject, Clock.clock == clock)
    if round is not None:
        stmt = stmt.where(Clock.round == round)
    return session.scalar(stmt.order_by(Clock.round.desc()).limit(1))


def start(session: Session, family_name: str, subject: str, spec: ClockSpec | str, now: datetime, *,
          start_at: datetime | None = None, round: int = 0, due_at: datetime | None = None, **fields) -> Clock:
    """Start a clock on `subject` (once per round: starting it again returns the row).
    `due_at`: a recurring clock's first occurrence (default: the policy's deadline).
    `fields`: ticket_id, owner_id, team, assignee, detail."""
    fam = family(family_name)
    if fam is None:
        raise ValueError(f"no clock family '{family_name}' is registered")
    if isinstance(spec, str):
        spec = fam.policy(spec)
    existing = find(session, subject, spec.id, round)
    if existing is not None:
        return existing
    begun = start_at or now
    due = due_at or spec.due(begun)
    row = _row_class(family_name)(subject=subject, clock=spec.id, rule=spec.rule, round=round, started_at=begun,
                                  due_at=due, warn_at=spec.warn_at(due), state="running", level=0,
                                  **{k: v for k, v in fields.items() if k != "detail"},
                                  detail=fields.get("detail") or {})
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent start won: use its row
        return find(session, subject, spec.id, round)
    fam.record(session, row, "clock_started", now, due_at=due.isoformat(), title=spec.title)
    return row


def stop(session: Session, row: Clock | None, now: datetime, by: str | None = None, at: datetime | None = None) -> Clock | None:
    """Stop a running clock: `met` in time, late (the family's word) after its deadline.
    `at`: when the stop really happened (default now)."""
    if row is None or row.state not in ACTIVE_STATES:
        return row
    fam = family(row.family)
    at = at or now
    late = row.state == "breached" or at > row.due_at
    row.stopped_at, row.next_step_at = at, None
    row.state = fam.late_state if late else "met"
    if late and row.breached_at is None:
        row.breached_at = row.due_at
    if by is not None:
        row.detail = {**(row.detail or {}), "stopped_by": by}
    fam.record(session, row, "clock_late" if late else "clock_met", now, due_at=row.due_at.isoformat(), by=by)
    session.flush()
    return row


def stop_named(session: Session, subject: str, clock: str, now: datetime, by: str | None = None) -> Clock | None:
    """Stop the clock `clock` on `subject` (its latest round)."""
    return stop(session, find(session, subject, clock), now, by=by)


def cancel(session: Session, subject: str, now: datetime, reason: str, clocks: Iterable[str] | None = None) -> list[Clock]:
    """Stop a subject's running clocks without a verdict (the request was withdrawn or closed)."""
    stmt = select(Clock).where(Clock.subject == subject, Clock.state.in_(ACTIVE_STATES))
    if clocks is not None:
        stmt = stmt.where(Clock.clock.in_(list(clocks)))
    rows = list(session.scalars(stmt.order_by(Clock.id)))
    for row in rows:
        _cancel(session, row, now, reason)
    session.flush()
    return rows


def _cancel(session: Session, row: Clock, now: datetime, reason: str) -> None:
    row.state, row.stopped_at, row.next_step_at = "cancelled", now, None
    family(row.family).record(session, row, "clock_cancelled", now, reason=reason)


def on_event(session: Session, family_name: str, subject: str, event: str, now: datetime,
             specs: Iterable[ClockSpec], *, start_at: datetime | None = None, round: int = 0,
             **fields) -> list[Clock]:
    """`event` happened to `subject`: stop its running clocks whose policy (among
    `specs`, the subject's policies) names it as a stop, start those it begins.
    Returns the clocks started."""
    specs = list(specs)
    by_id = {s.id: s for s in specs}
    for row in session.scalars(select(Clock).where(Clock.subject == subject, Clock.state.in_(ACTIVE_STATES))
                               .order_by(Clock.id)).all():
        spec = by_id.get(row.clock)
        if spec is not None and event in spec.stop:
            stop(session, row, now, by=event)
    started = [start(session, family_name, subject, s, now, start_at=start_at, round=round, **fields)
               for s in specs if s.start == event]
    session.flush()
    return started


# ---------------------------------------------------------------- firing

def _due_rows(session: Session, now: datetime, families: Iterable[str] | None):
    stmt = select(Clock).where(or_(
        and_(Clock.state == "running", Clock.due_at <= now),
        and_(Clock.state == "running", Clock.warn_at <= now, Clock.warned_at.is_(None)),
        and_(Clock.state == "breached", Clock.next_step_at <= now),
    ))
    if families is not None:
        stmt = stmt.where(Clock.family.in_(list(families)))
    return session.scalars(stmt.order_by(Clock.due_at, Clock.id)).all()


def check_due(session: Session, now: datetime, families: Iterable[str] | None = None) -> list[Push]:
    """Every warning, breach and escalation step, and every calendar occurrence, due at
    `now` (of `families`, default all). Returns the pushes; idempotent."""
    pushes: list[Push] = []
    for fam in _recurring_families(families):
        fam.start_due(session, now)
    for row in _due_rows(session, now, families):
        fam = family(row.family)
        if fam is None:
            log.warning("clock %s: family '%s' is not installed; skipped", row.id, row.family)
            continue
        spec = fam.spec(session, row)
        if spec is None:  # the policy changed under a running clock
            _cancel(session, row, now, "not in policy")
            continue
        if fam.auto_stop(session, row):
            continue
        if spec.calendar is not None:
            pushes += _occur_alone(session, fam, row, spec, now)
        elif row.state == "running" and row.due_at <= now:
            pushes += _breach(session, fam, row, spec, now)
        elif row.state == "running":
            row.warned_at = now
            pushes += fam.warn(session, row, spec, now)
        else:
            pushes += _step(session, fam, row, spec, now)
    session.flush()
    return pushes


def _breach(session: Session, fam: Family, row: Clock, spec: ClockSpec, now: datetime) -> list[Push]:
    """The deadline passed: recorded once (the one event of this miss), then the first step."""
    row.state, row.breached_at = "breached", row.due_at
    fam.record(session, row, "clock_breached", now, due_at=row.due_at.isoformat())
    first = spec.escalation[0] if spec.escalation else None
    if first is not None and first.after > 0:
        row.next_step_at = row.due_at + timedelta(minutes=first.after)
        return []
    return _step(session, fam, row, spec, now)


def _step(session: Session, fam: Family, row: Clock, spec: ClockSpec, now: datetime) -> list[Push]:
    """The next escalation step; one that could do nothing falls through to the next at once."""
    while row.level < len(spec.escalation):
        step = spec.escalation[row.level]
        row.level += 1
        nxt = spec.escalation[row.level] if row.level < len(spec.escalation) else None
        row.next_step_at = now + timedelta(minutes=nxt.after) if nxt else None
        pushes = fam.escalate(session, row, spec, step, now)
        if pushes is not None:
            return pushes
    row.next_step_at = None
    return []


# ---------------------------------------------------------------- recurring clocks

def _recurring_families(families: Iterable[str] | None) -> list[RecurringFamily]:
    load_capabilities()  # the capabilities register their families (and actions) when imported
    wanted = None if families is None else set(families)
    return [f for name, f in _FAMILIES.items() if (wanted is None or name in wanted) and hasattr(f, "start_due")]


def anchor_of(row: Clock) -> date | None:
    """The subject's date a recurring clock counts from (kept on the row when it started)."""
    return row.anchor


def _claim(session: Session, row: Clock, period: str, now: datetime) -> Reminder | None:
    """Record the occurrence; None when it was recorded already (a re-run, a second worker)."""
    rec = Reminder(rule=row.rule, subject=row.subject, period=period, detail={}, created_at=now)
    try:
        with session.begin_nested():
            session.add(rec)
        return rec
    except IntegrityError:
        return None


# An occurrence found later than this (the check did not run: an outage, a stuck queue) is
# not fired late: a festival greeting days late is worse than none. The rule resumes at its
# next moment; a rule counted from a subject's date (in arrears, a warranty's last month)
# fires at the next `at` of its still-open window, as the scheduler's daily jobs did
# (their misfire grace was this hour too).
CATCH_UP = timedelta(hours=1)


def _occur_alone(session: Session, fam: RecurringFamily, row: Clock, spec: ClockSpec, now: datetime) -> list[Push]:
    """An occurrence in a savepoint of its own: an action that fails (a bad template, a
    database error) is logged and tried again at the next check, and takes neither the
    other obligations nor the deadline clocks of this check down with it."""
    try:
        with session.begin_nested():
            return _occur(session, fam, row, spec, now)
    except Exception:
        log.exception("calendar clock %s (%s on %s) failed; tried again at the next check", row.id, row.clock,
                      row.subject)
        return []


def _occur(session: Session, fam: RecurringFamily, row: Clock, spec: ClockSpec, now: datetime) -> list[Push]:
    """One occurrence of a recurring clock: recorded once, its action run, the row moved on."""
    if fam.ended(session, row, spec, now):
        return []
    anchor = anchor_of(row)
    due = row.due_at
    if now - due > CATCH_UP:
        log.info("clock %s (%s %s) due %s not fired: too late", row.id, row.clock, row.subject, due.isoformat())
        due = spec.calendar.first(now, anchor)
        _move_on(row, due, now)
        if due is None or due > now:
            return []
    period = spec.calendar.period(due, anchor, spec.period)
    pushes: list[Push] = []
    rec = _claim(session, row, period, now)
    if rec is not None:
        occ = Occurrence(session=session, row=row, spec=spec, at=due, now=now, period=period, anchor=anchor)
        pushes = fam.occur(occ)
        rec.detail = {"clock": spec.id, **occ.detail}  # which policy fired (two may share a rule)
        row.level += 1  # occurrences fired
        row.detail = {**(row.detail or {}), "last_period": period, "last_fired_at": now.isoformat()}
        fam.record(session, row, "clock_fired", now, period=period)
    _move_on(row, spec.calendar.after(due, anchor), now)
    return pushes


def _move_on(row: Clock, nxt: datetime | None, now: datetime) -> None:
    """The row waits for its next occurrence, or is done (`met`) when the rule has none."""
    if nxt is None:
        row.state, row.stopped_at = "met", now
    else:
        row.due_at = nxt
