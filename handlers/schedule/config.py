"""handlers/schedule/schedule.yaml, loaded once and validated: a mistake names the
file, the entry and the field instead of failing at 3 a.m. when a job fires."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any

from ground import rules
from ground.rules import RulesError

SCHEDULE_FILE = Path(__file__).with_name("schedule.yaml")
TRIGGERS = ("cron", "interval")
CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
INTERVAL_FIELDS = ("weeks", "days", "hours", "minutes", "seconds")
SLOTS = ("minute", "hour", "day", "month", "quarter")


ScheduleError = RulesError  # the one error type of rule files (ground/rules.py)


@dataclass(frozen=True)
class JobSpec:
    name: str
    trigger: str
    trigger_args: dict
    task: str
    queue: str  # an rq queue, or "inline" for light work done in the scheduler itself
    once_per: str | int | None


@dataclass(frozen=True)
class Schedule:
    path: Path
    timezone: str
    quiet_start: time
    quiet_end: time
    avoid_minutes: tuple[int, ...]
    avoid_margin: int
    campaign: dict
    jobs: dict[str, JobSpec]
    rules: dict
    texts: dict[str, str]
    holiday_names: dict[str, str]
    holiday_defer: tuple[str, ...]
    festivals: dict[date, str] = field(default_factory=dict)
    occasion_texts: dict[str, str] = field(default_factory=dict)

    def text(self, key: str, **values: Any) -> str:
        return self.texts[key].format(**values)


def _err(path: Path, where: str, msg: str) -> ScheduleError:
    return ScheduleError(f"{path.name}: {where}: {msg}")


def _hhmm(path: Path, where: str, raw: Any) -> time:
    try:
        h, m = str(raw).split(":")
        return time(int(h), int(m))
    except Exception:
        raise _err(path, where, f"expected HH:MM, got {raw!r}") from None


def capability_jobs() -> dict:
    """name -> handlers.capability.Job over every capability of handlers.CAPABILITIES
    (a name two capabilities declare raises)."""
    from handlers import load_capabilities
    from handlers.capability import all_jobs

    return all_jobs(load_capabilities())


def _job_spec(path: Path, where: str, name: str, spec: Any) -> JobSpec:
    if not isinstance(spec, dict):
        raise _err(path, where, "expected a mapping")
    trig = spec.get("trigger")
    if trig not in TRIGGERS:
        raise _err(path, f"{where}.trigger", f"must be one of {TRIGGERS}, got {trig!r}")
    allowed = CRON_FIELDS if trig == "cron" else INTERVAL_FIELDS
    unknown = set(spec) - {"trigger", "task", "queue", "once_per", *allowed}
    if unknown:
        raise _err(path, where, f"unknown field(s) {sorted(unknown)} for a {trig} trigger")
    args = {k: spec[k] for k in allowed if k in spec}
    if not args:
        raise _err(path, where, f"a {trig} trigger needs at least one of {allowed}")
    task = spec.get("task")
    if not task:
        raise _err(path, f"{where}.task", "missing")
    queue = spec.get("queue", "scheduled")
    if queue not in ("inline", "scheduled", "bulk"):
        raise _err(path, f"{where}.queue", f"must be inline, scheduled or bulk, got {queue!r}")
    once = spec.get("once_per")
    if once is not None and once not in SLOTS and not (isinstance(once, int) and once > 0):
        raise _err(path, f"{where}.once_per", f"must be one of {SLOTS}, a number of seconds, or null; got {once!r}")
    return JobSpec(name, trig, args, task, queue, once)


def load_schedule(path: Path = SCHEDULE_FILE) -> Schedule:
    return SCHEDULE.get(path)


def _build(data: Any, src: rules.Source) -> Schedule:
    path = src.path
    if not isinstance(data, dict):
        raise _err(path, "", "expected a mapping of settings") if data else _err(path, "quiet_hours", "missing")
    for key in ("quiet_hours", "jobs", "texts", "campaign"):
        if key not in data:
            raise _err(path, key, "missing")
    qh = data["quiet_hours"]
    quiet_start = _hhmm(path, "quiet_hours.start", qh.get("start"))
    quiet_end = _hhmm(path, "quiet_hours.end", qh.get("end"))
    marks = data.get("avoid_marks") or {}
    avoid = tuple(int(m) for m in marks.get("minutes", []))
    if any(not 0 <= m < 60 for m in avoid):
        raise _err(path, "avoid_marks.minutes", f"minutes must be 0-59, got {avoid}")

    # Whether a job's task exists is checked where the tasks are (scheduler/tasks.py::check_tasks).
    jobs = {name: _job_spec(path, f"jobs.{name}", name, spec) for name, spec in (data["jobs"] or {}).items()}
    # The capabilities' own jobs (Capability.job), checked the same way; a name is one job.
    # `capability_jobs: false` keeps only this file's jobs (a test, a scheduler for one task).
    with_caps = data.get("capability_jobs", True)
    if not isinstance(with_caps, bool):
        raise _err(path, "capability_jobs", f"must be true or false, got {with_caps!r}")
    for name, job in (capability_jobs() if with_caps else {}).items():
        if name in jobs:
            raise ScheduleError(f"{path.name}: jobs.{name}: also declared by capability {job.owner}; "
                                "a job has one name")
        spec = {"trigger": job.trigger, "task": name, "queue": job.queue, "once_per": job.once_per, **job.trigger_args}
        jobs[name] = _job_spec(path, f"capability {job.owner}: job {name}", name, spec)

    texts = {str(k): str(v) for k, v in (data["texts"] or {}).items()}
    festivals = {}
    for raw, name in (data.get("festivals") or {}).items():
        try:
            festivals[date.fromisoformat(str(raw))] = str(name)
        except ValueError:
            raise _err(path, f"festivals.{raw}", "expected a YYYY-MM-DD date") from None
    camp = dict(data["campaign"])
    for key in ("batch_size", "chunk_seconds", "window_seconds", "window_hours"):
        if not isinstance(camp.get(key), (int, float)) or camp[key] <= 0:
            raise _err(path, f"campaign.{key}", f"must be a positive number, got {camp.get(key)!r}")
    if not isinstance(camp.get("group_bulk_send", True), bool):
        raise _err(path, "campaign.group_bulk_send", f"must be true or false, got {camp.get('group_bulk_send')!r}")
    return Schedule(
        path=path, timezone=data.get("timezone", "Asia/Shanghai"), quiet_start=quiet_start, quiet_end=quiet_end,
        avoid_minutes=avoid, avoid_margin=int(marks.get("margin_minutes", 0)), campaign=camp, jobs=jobs,
        rules=data.get("rules") or {}, texts=texts, holiday_names=dict(data.get("holiday_names") or {}),
        holiday_defer=tuple(data.get("holiday_defer_to_festival") or ()), festivals=festivals,
        occasion_texts={str(k): str(v) for k, v in (data.get("occasion_texts") or {}).items()},
    )


SCHEDULE = rules.RuleFile(SCHEDULE_FILE, build=_build)


def get_schedule() -> Schedule:
    override = os.environ.get("GUANJIA_SCHEDULE_FILE")
    return load_schedule(Path(override) if override else SCHEDULE_FILE)


def reset_schedule() -> None:
    SCHEDULE.reload()


def time_scale() -> float:
    """Tests and benches shrink the limits' time windows (1 = real time)."""
    try:
        return float(os.environ.get("GUANJIA_SCHED_TIME_SCALE", "1") or 1)
    except ValueError:
        return 1.0
