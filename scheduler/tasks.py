"""rq tasks of the scheduler: the heavy part of every job. A scheduler job
only enqueues one of these (queue "scheduled", or "bulk" for campaigns).

Each task takes plain values, reads "now" from ground.clock and is safe to run
twice: campaigns run in leased chunks, pushes carry dedup keys. The calendar
obligations (O12-O19) are not tasks: the clock engine fires them
(handlers/obligations.py).
"""
from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import select

# run_campaign: rq jobs queued before campaigns moved to bot/ name scheduler.tasks.run_campaign.
from bot.campaigns import due_campaigns, enqueue_campaign, recover_orphans, run_campaign, track_group_msgs  # noqa: F401
from bot.outbound import outbox
from bot.queues import get_redis
from bot.sweeper import sweep as do_sweep
from ground import clock
from handlers.capability import resolve
from handlers.message import Outcome, Push
from handlers.schedule.config import Schedule, ScheduleError, capability_jobs, get_schedule
from store.db import session_scope
from store.models import Campaign

log = logging.getLogger(__name__)


def _queue(ids: list[int]) -> None:
    outbox.queue_send([i for i in ids if i])


# --- campaigns --------------------------------------------------------------------------

def pump_campaigns() -> list[int]:
    """Queue every campaign that is due and allowed at this hour."""
    with session_scope() as s:
        recover_orphans(s, get_redis())
    try:  # what the groups' staff owners confirmed of the company bulk sends
        with session_scope() as s:
            track_group_msgs(s)
    except Exception as exc:  # WeCom down or not configured: the next round asks again
        log.warning("group bulk sends not tracked: %s", exc)
    with session_scope() as s:
        due = due_campaigns(s, clock.now())
        em = {c.id for c in s.scalars(select(Campaign).where(Campaign.id.in_(due), Campaign.emergency.is_(True)))}
    return [cid for cid in due if enqueue_campaign(cid, cid in em)]


# --- the capabilities' periodic jobs (Capability.job) ----------------------------------------


def run_capability_job(name: str) -> dict:
    """Run a capability's periodic function and send what it returns."""
    job = capability_jobs()[name]
    fn = resolve(job.fn)
    if not job.session:  # manages its own sessions (the archive poll)
        return {"hook": name, "result": fn()}
    now = clock.now()
    with session_scope() as s:
        res = fn(s, now)
        pushes = res.pushes if isinstance(res, Outcome) else \
            [p for p in res if isinstance(p, Push)] if isinstance(res, (list, tuple)) else []
        ids = [row.id for row in (outbox.add(s, p, now) for p in pushes) if row is not None]
    _queue(ids)
    return {"hook": name, "pushes": len(ids)}


def sweep() -> dict:
    return do_sweep()


# The scheduler's own tasks a schedule.yaml job may name; a capability's jobs
# (Capability.job) are their own tasks, by the job's name.
# The calendar obligations (O12-O19) are clock policies fired by the engine's `deadlines`
# job (handlers/data/calendar_clocks.yaml, handlers/obligations.py), not tasks here.
JOB_TASKS: dict[str, Callable[[], object]] = {"sweep": sweep, "pump_campaigns": pump_campaigns}


def task_function(task: str) -> Callable[[], object]:
    """The function behind a job's `task`: the scheduler's own, or a capability's job."""
    if task in JOB_TASKS:
        return JOB_TASKS[task]
    if task in capability_jobs():
        return lambda: run_capability_job(task)
    raise KeyError(f"unknown task {task!r}")


def known_tasks() -> list[str]:
    return sorted({*JOB_TASKS, *capability_jobs()})


def check_tasks(schedule: Schedule) -> Schedule:
    """Every job of schedule.yaml names a task above or a capability's job (config.py reads
    the file and cannot know them). The scheduler checks at start, so a typo stops it
    naming file, job and task."""
    known = known_tasks()
    for name, spec in schedule.jobs.items():
        if spec.task not in known:
            raise ScheduleError(f"{schedule.path.name}: jobs.{name}.task: unknown task {spec.task!r}; "
                                f"known: {known}")
    return schedule


def run_job(name: str, slot: str | None = None) -> object:
    """The rq entry point of a scheduled job (by its schedule.yaml name)."""
    spec = get_schedule().jobs[name]
    res = task_function(spec.task)()
    log.info("job %s (%s): %s", name, slot, res)
    return res
