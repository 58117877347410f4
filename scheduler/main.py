"""`guanjia scheduler`: APScheduler with its jobs in the project's database,
run only by the leader among however many scheduler processes are started.

- Jobs come from schedule.yaml and are (re)written into the persistent job
  store (SQLAlchemyJobStore, table apscheduler_jobs) when a process becomes
  leader, so a changed timing takes effect at the next hand-over or restart.
- Followers poll the Redis lock every `poll_s`; the leader renews it every
  `renew_s`. A leader that cannot renew (lost Redis, paused process) stops its
  scheduler at once: two schedulers must never run the same jobs.
- Job functions (scheduler.jobs.fire) record the run per slot in the database
  (unique), so even a double fire during a hand-over runs a job once.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import timedelta

log = logging.getLogger(__name__)
_EPS = timedelta(microseconds=1)


def _settings() -> dict:
    return {
        "ttl_s": float(os.environ.get("GUANJIA_SCHEDULER_LOCK_TTL_S", "30")),
        "renew_s": float(os.environ.get("GUANJIA_SCHEDULER_RENEW_S", "10")),
        "poll_s": float(os.environ.get("GUANJIA_SCHEDULER_POLL_S", "5")),
    }


def build_scheduler(engine=None):
    """A BackgroundScheduler on the database job store, with schedule.yaml's jobs."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from bot.clock import CST
    from scheduler.config import get_schedule
    from store.db import get_engine

    sched = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine or get_engine(), tablename="apscheduler_jobs")},
        executors={"default": ThreadPoolExecutor(4)},
        # coalesce: after downtime a job runs once, not once per missed fire;
        # max_instances 1: a slow enqueue never overlaps itself.
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone=CST,
    )
    return sched, get_schedule()


def make_trigger(spec):
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from bot.clock import CST

    if spec.trigger == "cron":
        return CronTrigger(timezone=CST, **spec.trigger_args)
    return IntervalTrigger(timezone=CST, **spec.trigger_args)


def sync_jobs(sched, schedule) -> list[str]:
    """Write schedule.yaml's jobs into the job store; drop jobs no longer listed.

    A job whose timing did not change is left as stored: its next_run_time may
    lie in the past (the old leader died just before it), and APScheduler then
    runs it once on start (misfire grace, coalesced) instead of skipping to the
    next month."""
    names = []
    for name, spec in schedule.jobs.items():
        trigger = make_trigger(spec)
        job = sched.get_job(name)
        if job is None or str(job.trigger) != str(trigger) or list(job.args) != [name] \
                or job.func_ref != "scheduler.jobs:fire":
            sched.add_job("scheduler.jobs:fire", trigger=trigger, args=[name], id=name, name=name,
                          replace_existing=True)
        names.append(name)
    for job in sched.get_jobs():
        if job.id not in schedule.jobs:
            job.remove()
    return names


class SchedulerProcess:
    """Follower until it gets the lock; leader until it loses it or stops."""

    def __init__(self) -> None:
        from bot.queues import get_redis
        from scheduler.leader import LeaderLock

        self.cfg = _settings()
        self.lock = LeaderLock(get_redis(), ttl_s=self.cfg["ttl_s"])
        self.stop_event = threading.Event()
        self.sched = None

    def _lead(self) -> None:
        sched, schedule = build_scheduler()
        sched.start(paused=True)
        try:
            names = sync_jobs(sched, schedule)
        except Exception:
            sched.shutdown(wait=False)  # no half-started scheduler left behind
            self.lock.release()  # let another process try
            raise
        sched.resume()
        self.sched = sched
        log.info("scheduler %s leads; jobs: %s", self.lock.token, ", ".join(names))
        print(f"LEADER {self.lock.token}", flush=True)

    def _step_down(self) -> None:
        if self.sched is not None:
            try:
                self.sched.shutdown(wait=False)
            except Exception:
                pass
            self.sched = None
            print(f"FOLLOWER {self.lock.token}", flush=True)

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                if self.sched is None:
                    if self.lock.acquire():
                        self._lead()
                    wait = self.cfg["poll_s"] if self.sched is None else self.cfg["renew_s"]
                else:
                    if not self.lock.renew():
                        log.warning("scheduler %s lost the lock; stepping down", self.lock.token)
                        self._step_down()
                    wait = self.cfg["renew_s"]
            except Exception as exc:  # Redis down: a leader that cannot renew must stop
                log.warning("scheduler lock: %s", exc)
                self._step_down()
                wait = self.cfg["poll_s"]
            self.stop_event.wait(wait)
        self._step_down()
        self.lock.release()


def run_scheduler() -> None:
    from bot.logs import setup_logging

    setup_logging()
    # APScheduler logs every run at INFO (the sweeper every 5 s): too chatty.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    proc = SchedulerProcess()

    def stop(*_):
        proc.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"scheduler {proc.lock.token} started", flush=True)
    proc.run()


def due_between(start, end, names: list[str] | None = None) -> list[tuple]:
    """(fire time, job name) of every cron/interval job of schedule.yaml in
    (start, end], in order: what the leader would run over that span. Used by
    the tests (with a frozen clock) and handy to check a schedule change."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from bot.clock import CST
    from scheduler.config import get_schedule

    out = []
    for name, spec in get_schedule().jobs.items():
        if names is not None and name not in names:
            continue
        if spec.trigger == "cron":
            trig = CronTrigger(timezone=CST, **spec.trigger_args)
        else:
            trig = IntervalTrigger(timezone=CST, start_date=start, **spec.trigger_args)
        t = trig.get_next_fire_time(None, start)
        while t is not None and t <= end:
            if t > start:
                out.append((t, name))
            t = trig.get_next_fire_time(t, t + _EPS)
    return sorted(out)

