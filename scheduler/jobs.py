"""What APScheduler calls: tiny functions that record the run and enqueue the
real work (scheduler/tasks.py) on rq. They must return fast: the scheduler
thread pool is small and a leader hand-over must not wait on them."""
from __future__ import annotations

import logging
import os
import socket

from sqlalchemy.exc import IntegrityError

from bot.queues import get_queue
from ground import clock
from handlers.schedule.config import get_schedule
from handlers.schedule.timing import slot_key
from scheduler.tasks import task_function
from store.db import retry_busy, session_scope
from store.models import JobRun

log = logging.getLogger(__name__)


# A locked database (a backup, a stuck writer) is waited out this long before a run is
# given up; meanwhile this job's later fires are skipped (max_instances 1), and the slot
# it claims is the one it fell due in, so it still runs once.
CLAIM_BUSY_BUDGET_S = float(os.environ.get("GUANJIA_SCHEDULER_CLAIM_BUDGET_S", "600"))


def claim_slot(name: str, slot: str) -> bool:
    """Record the run; False when this job already ran in this slot (another
    process, a previous leader, a misfire catch-up)."""
    def once() -> bool:
        try:
            with session_scope() as s:
                s.add(JobRun(job=name, slot=slot, host=f"{socket.gethostname()}:{os.getpid()}",
                             created_at=clock.now()))
            return True
        except IntegrityError:
            return False

    return retry_busy(once, CLAIM_BUSY_BUDGET_S, f"job {name} slot {slot}")


def fire(name: str) -> str:
    """Run job `name` of schedule.yaml once for the current slot."""
    spec = get_schedule().jobs.get(name)
    if spec is None:
        log.warning("job %s is no longer in schedule.yaml; ignored", name)
        return "unknown"
    if spec.queue == "inline":  # light and self-deduplicating (the sweeper)

        task_function(spec.task)()
        return "inline"
    slot = slot_key(clock.now(), spec.once_per)
    if slot is not None and not claim_slot(name, slot):
        log.info("job %s slot %s: already ran", name, slot)
        return "duplicate"
    get_queue(spec.queue).enqueue("scheduler.tasks.run_job", name, slot, job_timeout=600,
                                  description=f"scheduled {name} {slot}")
    log.info("job %s slot %s: queued", name, slot)
    return "queued"
