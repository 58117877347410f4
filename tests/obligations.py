"""Driving the calendar obligations (O12-O19) under a frozen clock: they are clock
policies (handlers/data/calendar_clocks.yaml) fired by the engine's one check, the
scheduler's `deadlines` job; what each occurrence did is in its record
(`scheduler_reminders`, detail["clock"] = the policy)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select


def run_check() -> dict:
    """The `deadlines` job as a worker runs it (check_due, then the pushes into the outbox)."""
    from scheduler.tasks import run_job

    return run_job("deadlines", None)


def fired(policy: str, at: datetime | None = None) -> list[dict]:
    """The records of `policy`'s occurrences (those recorded at `at` when given), oldest first:
    {"subject", "period", **what the action recorded}."""
    from store.db import session_scope
    from store.models import Reminder

    with session_scope() as s:
        rows = s.scalars(select(Reminder).order_by(Reminder.id)).all()
        return [{"subject": r.subject, "period": r.period, **(r.detail or {})} for r in rows
                if (r.detail or {}).get("clock") == policy and (at is None or r.created_at == at)]


def fire_at(frozen_clock, at: datetime, policy: str) -> dict:
    """Set the clock to `at`, run the check, and return `policy`'s record of that moment
    (empty when it did not fire)."""
    frozen_clock.set(at)
    run_check()
    got = fired(policy, frozen_clock.now())
    return got[0] if got else {}
