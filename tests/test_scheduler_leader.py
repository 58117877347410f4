"""Two real `guanjia scheduler` processes: one leads, each job runs once per
slot, and killing the leader (SIGKILL) hands over to the other well within a
minute; the jobs live in the database job store."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, text

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


class Proc:
    def __init__(self, env: dict, log: Path) -> None:
        self.lines: list[str] = []
        self.p = subprocess.Popen([sys.executable, "-m", "bot", "scheduler"], cwd=str(ROOT), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.log = open(log, "a")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self.lines.append(line)
            self.log.write(line)
            self.log.flush()

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def wait_for(self, text: str, timeout: float) -> float:
        t0 = time.monotonic()
        while not self.saw(text):
            assert time.monotonic() - t0 < timeout, "".join(self.lines[-30:])
            time.sleep(0.05)
        return time.monotonic() - t0

    def kill(self, sig: int) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, sig)
            self.p.wait(15)


def test_one_leader_jobs_once_and_hand_over(env, tmp_path):
    from handlers.schedule.config import SCHEDULE_FILE
    from store.db import session_scope
    from store.models import JobRun

    data = yaml.safe_load(SCHEDULE_FILE.read_text(encoding="utf-8"))
    # One job every 2 seconds, at most once per 2-second slot.
    data["capability_jobs"] = False  # only this job
    data["jobs"] = {"tick": {"trigger": "cron", "second": "*/2", "task": "pump_campaigns", "queue": "scheduled",
                             "once_per": 2}}
    sched_file = tmp_path / "schedule.yaml"
    sched_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    penv = {**os.environ, "GUANJIA_SCHEDULE_FILE": str(sched_file), "GUANJIA_SCHEDULER_LOCK_TTL_S": "4",
            "GUANJIA_SCHEDULER_RENEW_S": "1", "GUANJIA_SCHEDULER_POLL_S": "0.5", "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "schedulers.log"
    a = Proc(penv, log)
    a.wait_for("LEADER", 30)
    b = Proc(penv, log)
    b.wait_for("started", 30)
    try:
        time.sleep(7)
        assert not b.saw("LEADER")  # one leader
        # Kill the leader outright: no release of the lock, no goodbye.
        a.kill(signal.SIGKILL)
        killed = time.time()
        took = b.wait_for("LEADER", 60)
        assert took < 60  # "within a minute"; with these settings within the lock's TTL
        time.sleep(7)
    finally:
        b.kill(signal.SIGTERM)
        a.kill(signal.SIGKILL)
    with session_scope() as s:
        runs = [(r.slot, r.host, r.created_at.timestamp()) for r in s.scalars(select(JobRun).order_by(JobRun.id))]
        stored = s.execute(text("SELECT id FROM apscheduler_jobs")).scalars().all()
    assert stored == ["tick"]  # APScheduler's persistent job store, in the project's database
    before = [r for r in runs if r[2] < killed]
    after = [r for r in runs if r[2] >= killed]
    hosts_before, hosts_after = {h for _, h, _ in before}, {h for _, h, _ in after}
    assert hosts_before == {f"{h.split(':')[0]}:{a.p.pid}" for h in hosts_before} and len(hosts_before) == 1
    assert len(hosts_after) == 1 and hosts_after != hosts_before  # the other process took over
    assert len(before) >= 3 and len(after) >= 3
    assert len({slot for slot, _, _ in runs}) == len(runs)  # each slot once
    # Nobody fired a slot someone else had: the follower never ran the job while a leader lived.
    assert not any("already ran" in line for line in a.lines + b.lines)
    # Every run was handed to rq exactly once.
    from bot.queues import get_queue
    assert get_queue("scheduled").count == len(runs)
    print(f"\nhand-over took {took:.1f}s; runs before {len(before)}, after {len(after)}")
