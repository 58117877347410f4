"""`guanjia scheduler`: APScheduler with its jobs in the project's database,
run only by the leader among however many scheduler processes are started.

- Jobs come from schedule.yaml and are (re)written into the persistent job
  store (SQLAlchemyJobStore, table apscheduler_jobs) when a process becomes
  leader, so a changed timing takes effect at the next hand-over or restart.
- Followers poll the Redis lock every `poll_s`. The leader's lock is renewed by
  APScheduler's own loop (`_Scheduler._process_jobs`, at least every `renew_s`),
  which also writes its heartbeat (bot/heartbeat.py, read by /healthz): a loop
  that stalls or died stops renewing, the lock lapses within `ttl_s` and a standby
  takes over; the main thread sees the stale loop and steps down too. Two
  schedulers must never run the same jobs for long.
- A job-store error (database locked) does not kill the loop: it is logged and
  the round retried after `jobstore_retry_interval`; the job store's connections
  wait only briefly for a lock, so the loop keeps beating meanwhile.
- Job functions (scheduler.jobs.fire) record the run per slot in the database
  (unique), so even a double fire during a hand-over runs a job once.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import timedelta

from bot import heartbeat, ports
from bot.logs import setup_logging
from bot.queues import get_redis
from ground.clock import CST
from ground.config import get_settings
from handlers.clocks import calendar
from handlers.schedule.config import get_schedule
from scheduler.leader import LeaderLock
from scheduler.tasks import check_tasks
from store.db import get_engine, make_engine

log = logging.getLogger(__name__)
_EPS = timedelta(microseconds=1)


def _settings() -> dict:
    return {
        "ttl_s": float(os.environ.get("GUANJIA_SCHEDULER_LOCK_TTL_S", "30")),
        "renew_s": float(os.environ.get("GUANJIA_SCHEDULER_RENEW_S", "10")),
        "poll_s": float(os.environ.get("GUANJIA_SCHEDULER_POLL_S", "5")),
    }


def _make_scheduler_class():
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.base import STATE_STOPPED

    class _Scheduler(BackgroundScheduler):
        """APScheduler whose loop survives job-store errors and proves it is alive.

        APScheduler 3 guards only `get_due_jobs`; an error in `update_job` or
        `get_next_run_time` ("database is locked") ends its thread silently. Here
        every round is guarded: the error is logged and the round retried; a job
        whose next run time could not be stored is simply due again next round
        (jobs record their slot, scheduler/jobs.py, so it still runs once)."""

        def __init__(self, *args, on_round=None, max_wait_s: float = 10.0, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.on_round = on_round
            self.max_wait_s = max_wait_s
            self.last_round = time.monotonic()

        def _process_jobs(self):
            error = None
            try:
                wait = super()._process_jobs()
            except Exception as exc:  # noqa: BLE001 - the loop must not die
                log.error("scheduler round failed (%s: %s); retrying in %.1f s", type(exc).__name__,
                          str(exc).splitlines()[0][:200], self.jobstore_retry_interval)
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                wait = self.jobstore_retry_interval
            if self.state == STATE_STOPPED:  # stepped down while this round was stuck
                return None
            self.last_round = time.monotonic()
            if self.on_round is not None:
                try:
                    self.on_round(error)
                except Exception as exc:  # noqa: BLE001
                    log.warning("scheduler heartbeat: %s", exc)
            # Wake up at least every max_wait_s: the round is the heartbeat.
            return self.max_wait_s if wait is None else min(wait, self.max_wait_s)

        def loop_alive(self) -> bool:
            thread = getattr(self, "_thread", None)
            return thread is not None and thread.is_alive()

    return _Scheduler


_jobstore_engines: dict = {}


def _jobstore_engine(busy_timeout_s: float):
    """The job store's own engine: its statements wait only briefly for a lock, so a
    locked database makes a round fail fast (logged, retried) instead of stalling
    the loop past the lock's TTL."""
    url = get_settings().database_url
    if not url.startswith("sqlite"):
        return get_engine()
    key = (url, busy_timeout_s)
    if key not in _jobstore_engines:
        _jobstore_engines[key] = make_engine(url, pool_size=2, busy_timeout_ms=int(busy_timeout_s * 1000))
    return _jobstore_engines[key]


def build_scheduler(engine=None, on_round=None, cfg: dict | None = None):
    """A BackgroundScheduler on the database job store, with schedule.yaml's jobs."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    cfg = cfg or _settings()
    sched = _make_scheduler_class()(
        jobstores={"default": SQLAlchemyJobStore(
            engine=engine or _jobstore_engine(max(0.2, min(2.0, cfg["ttl_s"] / 3))), tablename="apscheduler_jobs")},
        executors={"default": ThreadPoolExecutor(4)},
        # coalesce: after downtime a job runs once, not once per missed fire;
        # max_instances 1: a slow enqueue never overlaps itself.
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone=CST,
        jobstore_retry_interval=max(0.5, min(5.0, cfg["renew_s"])),
        on_round=on_round,
        max_wait_s=cfg["renew_s"],
    )
    return sched, get_schedule()


def make_trigger(spec):
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

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
    """Follower until it gets the lock; leader while its scheduler loop keeps the lock."""

    def __init__(self) -> None:
        check_tasks(get_schedule())  # a job naming no task stops the start, not its first run
        self.cfg = _settings()
        self.lock = LeaderLock(get_redis(), ttl_s=self.cfg["ttl_s"])
        self.stop_event = threading.Event()
        self.sched = None
        self.lock_held = False

    def _on_round(self, error: str | None) -> None:
        """Called by the scheduler's loop after each round: renew the lock, beat."""
        try:
            self.lock_held = self.lock.renew()
        except Exception as exc:  # Redis down: no proof of leadership
            self.lock_held = False
            log.warning("scheduler %s cannot renew its lock: %s", self.lock.token, exc)
            return
        if not self.lock_held:
            return
        heartbeat.beat("scheduler", self.lock.token, ok=error is None, error=error, leader=True)

    def _lead(self) -> None:
        sched, schedule = build_scheduler(on_round=self._on_round, cfg=self.cfg)
        self.lock_held = True
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

    def _why_not_alive(self) -> str | None:
        """Why this leader must step down, or None while its loop proves it leads."""
        if not self.sched.loop_alive():
            return "its scheduler thread died"
        stalled = time.monotonic() - self.sched.last_round
        if stalled > self.cfg["ttl_s"]:
            return f"its scheduler loop has been stuck for {stalled:.0f} s"
        if not self.lock_held:
            return "its loop could not renew the lock"
        return None

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                if self.sched is None:
                    if self.lock.acquire():
                        self._lead()
                    wait = self.cfg["poll_s"] if self.sched is None else self.cfg["renew_s"]
                else:
                    why = self._why_not_alive()
                    if why:
                        log.warning("scheduler %s steps down: %s", self.lock.token, why)
                        self._step_down()
                        self.lock.release()
                    wait = min(self.cfg["renew_s"], self.cfg["poll_s"])
            except Exception as exc:  # Redis or the database down: retry, never die
                log.warning("scheduler %s: %s: %s", self.lock.token, type(exc).__name__, str(exc)[:200])
                self._step_down()
                wait = self.cfg["poll_s"]
            self.stop_event.wait(wait)
        self._step_down()
        self.lock.release()


def run_scheduler() -> None:
    setup_logging()
    ports.install()
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
    """(fire time, name) of every cron/interval job of schedule.yaml in (start, end],
    and of every calendar obligation (O12-O19, by policy id: when the engine's
    `deadlines` check may fire it), in order: what would run over that span. Used by
    the tests (with a frozen clock) and handy to check a schedule change."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    out = list(calendar.due_between(start, end, names))
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

