"""End to end on real processes: `guanjia serve` under gunicorn, a real
redis-server, `guanjia worker`, `guanjia scheduler` and the fake platform.

Encrypted OA (safe mode) and WeCom messages are posted as the platforms post
them, each three times; every one must be handled exactly once and answered
exactly once (a passive reply in one of the HTTP answers, or one record in the
fake platform's /_sent). Then the same with Redis stopped in the middle:
nothing lost, everything answered once Redis is back.

And issue 13's faults at once (a long text, the database locked for 35 s, a worker
killed, a slow platform): every accepted message handled once, the scheduler alive,
each clock due meanwhile fired once.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests import platform as P
from tests.conftest import ROOT, RedisServer, free_port, seed_var_dir, wait_port

pytestmark = pytest.mark.slow

CS_SEND = "/cgi-bin/message/custom/send"  # OA customer-service message (pushed reply)
APP_SEND = "/cgi-bin/message/send"  # WeCom app message (pushed reply)


class Stack:
    """The processes of one deployment, with their logs under tmp."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.redis = RedisServer(tmp)
        self.web_port, self.fake_port = free_port(), free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("WECHAT_", "WECOM_", "GUANJIA_", "DATABASE_URL", "REDIS_URL"))}
        self.env |= P.channel_env(f"http://127.0.0.1:{self.fake_port}") | {
            "DATABASE_URL": f"sqlite:///{tmp / 'e2e.db'}", "REDIS_URL": self.redis.url,
            "GUANJIA_VAR_DIR": str(seed_var_dir(tmp / "var")), "GUANJIA_WEB_WORKERS": "2", "GUANJIA_WEB_THREADS": "8",
            "GUANJIA_PASSIVE_BUDGET_S": "3", "GUANJIA_HTTP_TIMEOUT_S": "2", "GUANJIA_OUTBOX_BACKOFF_S": "0.5",
            "GUANJIA_OUTBOX_BACKOFF_MAX_S": "2", "GUANJIA_SCHEDULER_POLL_S": "1", "GUANJIA_SCHEDULER_RENEW_S": "1",
            "GUANJIA_SCHEDULER_LOCK_TTL_S": "3", "PYTHONUNBUFFERED": "1"}

    def _start(self, name: str, *args: str) -> None:
        log = open(self.tmp / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, scheduler: bool = True) -> None:
        self.redis.start()
        subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=self.env, check=True,
                       capture_output=True, timeout=60)
        self._start("fake", "dev", "fake-platform", "--port", str(self.fake_port))
        self._start("web", "serve", "--port", str(self.web_port))
        self._start("worker", "worker")
        if scheduler:
            self._start("scheduler", "scheduler")
        wait_port(self.fake_port, 30)
        wait_port(self.web_port, 30)
        deadline = time.time() + 30
        while time.time() < deadline:  # the worker is ready once it registered with rq
            if self.redis_up() and any(k.startswith(b"rq:worker:") for k in self._redis().keys("rq:worker:*")):
                return
            time.sleep(0.2)
        raise RuntimeError("worker did not start: " + self.log("worker")[-2000:])

    def _redis(self):
        from redis import Redis

        return Redis.from_url(self.redis.url, socket_connect_timeout=1)

    def redis_up(self) -> bool:
        try:
            return bool(self._redis().ping())
        except Exception:
            return False

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def alive(self) -> dict[str, int | None]:
        return {name: p.poll() for name, p in self.procs.items()}

    def stop(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is None:  # gunicorn: INT is its quick shutdown (TERM waits for requests)
                os.killpg(p.pid, signal.SIGINT if name == "web" else signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        self.redis.stop()

    # --- talking to it as the platforms do ---------------------------------------------

    def post(self, path: str, query: dict, body: bytes) -> requests.Response:
        return requests.post(f"http://127.0.0.1:{self.web_port}{path}", params=query, data=body, timeout=10)

    def sent(self) -> list[dict]:
        return requests.get(f"http://127.0.0.1:{self.fake_port}/_sent", timeout=5).json()

    def inbox(self) -> list[tuple]:
        import sqlite3

        with sqlite3.connect(self.tmp / "e2e.db") as db:
            return db.execute("SELECT sender, state, attempts, reply_mode FROM inbox").fetchall()


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path)
    try:
        s.start()
        yield s
    finally:
        s.stop()


def _messages(tag: str, n: int) -> list[tuple[str, str, dict, bytes]]:
    """n OA messages (safe mode) and n WeCom messages, one sender each so answers can be counted."""
    out = []
    for i in range(n):
        openid, userid = f"o_{tag}{i}", f"u_{tag}{i}"
        out.append((openid, "/wechat/mp", *P.mp_text_request(openid, "你好", f"{abs(hash(tag)) % 10**8}{i}")))
        out.append((userid, "/wecom/app", *P.wecom_text_request(userid, "你好", f"{abs(hash(tag)) % 10**8}{i}")))
    return out


def _post_three_times(stack: Stack, messages) -> dict[str, list[str]]:
    """Each message three times, the tries overlapping as WeChat's retries can; the passive replies by sender."""
    def one(item):
        sender, path, q, body = item
        replies = []
        for _ in range(3):
            r = stack.post(path, q, body)
            assert r.status_code == 200, (r.status_code, r.text)
            if r.text != "success":
                reply = P.mp_reply(r.content) if path == "/wechat/mp" else P.wecom_reply(r.content)
                assert reply["ToUserName"] == sender
                replies.append(reply["Content"])
        return sender, replies

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, messages))


def _pushed_by_recipient(stack: Stack) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in stack.sent():
        if call.get("path") in (CS_SEND, APP_SEND) and not call.get("dropped"):
            to = (call.get("json") or {}).get("touser")
            counts[to] = counts.get(to, 0) + 1
    return counts


def _wait_all_answered(stack: Stack, senders: list[str], passive: dict[str, list[str]], timeout: float) -> dict:
    deadline = time.time() + timeout
    while True:
        pushed = _pushed_by_recipient(stack)
        missing = [s for s in senders if len(passive.get(s, [])) + pushed.get(s, 0) < 1]
        if not missing or time.time() > deadline:
            return {"pushed": pushed, "missing": missing}
        time.sleep(0.3)


def _lost_report(stack: Stack, platform, missing: list[str]) -> str:
    """What a failure needs: the missing senders' rows, their tries, and the log lines about them."""
    import sqlite3

    with sqlite3.connect(stack.tmp / "e2e.db") as db:
        rows = {s: db.execute("SELECT id, state, attempts, reply_mode, queued_at, claimed_at, created_at"
                              " FROM inbox WHERE sender = ?", (s,)).fetchall() for s in missing}
    ids = {str(r[0]) for v in rows.values() for r in v}
    lines = []
    for name in ("web", "worker", "worker2", "scheduler"):
        try:
            text = stack.log(name)
        except OSError:
            continue
        lines += [f"{name}: {ln}" for ln in text.splitlines()
                  if any(m in ln for m in missing) or any(f"inbox {i} " in ln or f"inbox {i}:" in ln for i in ids)]
    report = {"rows": rows, "accepted": {s: platform.accepted.get(s) for s in missing},
              "tries": {s: platform.tries.get(s) for s in missing}, "log": lines[-60:]}
    return json.dumps(report, ensure_ascii=False, indent=1, default=str)  # a string: pytest prints it whole


def _check_once(stack: Stack, senders: list[str], passive: dict[str, list[str]], timeout: float = 20) -> None:
    result = _wait_all_answered(stack, senders, passive, timeout)
    assert not result["missing"], (result, stack.alive(), stack.log("worker")[-3000:])
    time.sleep(1.0)  # anything that would answer twice has had time to do so
    pushed = _pushed_by_recipient(stack)
    for s in senders:
        assert len(passive.get(s, [])) + pushed.get(s, 0) == 1, (s, passive.get(s), pushed.get(s))
    rows = {r[0]: r for r in stack.inbox()}
    for s in senders:
        sender, state, attempts, mode = rows[s]
        assert (state, attempts) == ("done", 1), rows[s]
        assert mode in ("passive", "pushed"), rows[s]


def test_every_message_once_and_answered_even_across_a_redis_outage(stack):
    started = time.time()
    # 1. Normal operation: 6 OA + 6 WeCom messages, three tries each.
    normal = _messages("n", 6)
    passive = _post_three_times(stack, normal)
    senders = [m[0] for m in normal]
    _check_once(stack, senders, passive)
    assert sum(len(v) for v in passive.values()) > 0  # the worker answers within the budget here
    assert len(stack.inbox()) == len(normal)

    # 2. Redis stops in the middle of traffic: the messages are accepted into the inbox table.
    during = _messages("d", 4)
    stack.redis.stop()
    passive_during = _post_three_times(stack, during)
    assert all(not v for v in passive_during.values())  # nobody can hand a passive reply over now
    assert {r[1] for r in stack.inbox() if r[0].endswith(tuple("0123")) and r[0][2] == "d"} == {"received"}
    health = requests.get(f"http://127.0.0.1:{stack.web_port}/healthz", timeout=5)
    assert health.status_code == 503 and "down" in health.json()["redis"]

    # 3. Redis comes back (same port, empty: a restart without persistence); the scheduler's
    #    sweeper queues what was kept, the worker handles it, the replies are pushed.
    stack.redis.start()
    after = _messages("a", 2)  # and new traffic flows again at once
    passive_after = _post_three_times(stack, after)
    all_during = [m[0] for m in during]
    _check_once(stack, all_during, passive_during, timeout=30)
    _check_once(stack, [m[0] for m in after], passive_after)
    # Retries of the outage's messages, after the Redis flush, meet the inbox table: still once.
    _post_three_times(stack, during[:2])
    _check_once(stack, all_during, passive_during)
    assert len(stack.inbox()) == len(normal) + len(during) + len(after)
    assert all(code is None for code in stack.alive().values()), stack.alive()
    assert "Traceback" not in stack.log("web")
    assert time.time() - started < 60


# --- issue 13: everything at once ------------------------------------------------------

LOCK_S = 35


class Platform:
    """Posts as WeChat/WeCom do: wait 5 s for an answer; anything but a 200 (or no answer)
    and it tries again, three tries in all. Records who was accepted and the passive replies."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.accepted: dict[str, list[str]] = {}  # sender -> passive replies
        self.refused: dict[str, list] = {}  # sender -> statuses of three failed tries
        self.statuses: list[int | str] = []
        self.tries: dict[str, list] = {}  # sender -> (wall time, status) of each try

    def deliver(self, sender: str, path: str, q: dict, body: bytes) -> None:
        tries = []
        for _ in range(3):
            t0 = time.monotonic()
            try:
                r = requests.post(f"http://127.0.0.1:{self.stack.web_port}{path}", params=q, data=body, timeout=5)
                status = r.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            self.statuses.append(status)
            tries.append(status)
            self.tries.setdefault(sender, []).append((time.strftime("%H:%M:%S"), status))
            if status == 200:
                replies = self.accepted.setdefault(sender, [])
                if r.text != "success":
                    reply = P.mp_reply(r.content) if path == "/wechat/mp" else P.wecom_reply(r.content)
                    assert reply["ToUserName"] == sender
                    replies.append(reply["Content"])
                return
            time.sleep(max(0.0, 5 - (time.monotonic() - t0)))
        self.refused[sender] = tries


def _clock_schedule(tmp: Path, due: list) -> Path:
    """The production schedule plus clocks that fall due at `due` (once a day each)."""
    import yaml

    from handlers.schedule.config import SCHEDULE_FILE

    data = yaml.safe_load(SCHEDULE_FILE.read_text(encoding="utf-8"))
    for i, t in enumerate(due):
        data["jobs"][f"clock{i}"] = {"trigger": "cron", "hour": t.hour, "minute": t.minute, "second": t.second,
                                     "task": "pump_campaigns", "queue": "scheduled", "once_per": "day"}
    path = tmp / "schedule.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_faults_at_once_lose_nothing_handle_once_and_keep_the_clocks(tmp_path):
    """While owners' messages stream in: a 5,000-letter message, the database locked for
    35 s, a worker SIGKILLed, the platform answering slowly. Afterwards every accepted
    message was handled once and answered once, the scheduler runs, and every clock that
    fell due meanwhile fired once."""
    import random
    import sqlite3
    import threading
    from datetime import datetime, timedelta

    from ground.clock import CST

    stack = Stack(tmp_path)
    stack.env |= {"GUANJIA_SCHEDULE_FILE": str(tmp_path / "schedule.yaml"),
                  "GUANJIA_HEALTH_SCHEDULER_STALE_S": "6", "GUANJIA_HEALTH_WORKER_STALE_S": "6",
                  "GUANJIA_HTTP_TIMEOUT_S": "4"}
    platform = Platform(stack)
    stream_stop = threading.Event()
    posters = ThreadPoolExecutor(24)
    try:
        stack.start(scheduler=False)
        # The clocks are set now that the stack runs, to fall due inside the lock.
        lock_at = datetime.now(CST) + timedelta(seconds=10)
        due = [lock_at + timedelta(seconds=s) for s in (4, 15, 30)]
        _clock_schedule(tmp_path, due)
        stack._start("scheduler", "scheduler")
        while "LEADER" not in stack.log("scheduler"):
            assert datetime.now(CST) < due[0] - timedelta(seconds=4), \
                "the scheduler took too long to start: " + stack.log("scheduler")[-2000:]
            time.sleep(0.2)
        # A slow start (a busy machine) moves the lock a little, still before the first clock.
        lock_at = max(lock_at, datetime.now(CST) + timedelta(seconds=3))
        fake = f"http://127.0.0.1:{stack.fake_port}"
        rnd = random.Random(13)
        futures = []

        def stream() -> None:  # one owner (OA) or staff member (WeCom) message every 0.4 s
            i = 0
            while not stream_stop.is_set():
                tag = f"s{i}"
                if i % 2:
                    item = (f"u_{tag}", "/wecom/app", *P.wecom_text_request(f"u_{tag}", "你好", 60000 + i))
                else:
                    item = (f"o_{tag}", "/wechat/mp", *P.mp_text_request(f"o_{tag}", "你好", 60000 + i))
                futures.append(posters.submit(platform.deliver, *item))
                i += 1
                stream_stop.wait(0.4)

        streamer = threading.Thread(target=stream, daemon=True)
        streamer.start()
        time.sleep(1.5)
        long_text = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5000))
        futures.append(posters.submit(platform.deliver, "o_long", "/wechat/mp",
                                      *P.mp_text_request("o_long", long_text, 59999)))
        for path in (CS_SEND, APP_SEND):  # the platform answers slowly (but within our time-out)
            requests.post(f"{fake}/_faults", json={"path": path, "delay_s": 1.0, "times": 6}, timeout=5)
        # Just before the lock the worker pauses (a GC pause, a busy host), so messages
        # accepted now are still waiting when the lock comes; it resumes into the lock.
        while datetime.now(CST) < lock_at - timedelta(seconds=2.5):
            time.sleep(0.1)
        worker = stack.procs["worker"].pid
        os.killpg(worker, signal.SIGSTOP)
        while datetime.now(CST) < lock_at:
            time.sleep(0.1)

        db = sqlite3.connect(tmp_path / "e2e.db", isolation_level=None, check_same_thread=False)
        db.execute("BEGIN EXCLUSIVE")  # a backup, a stuck writer: nobody else may write for 35 s
        locked = time.monotonic()
        os.killpg(worker, signal.SIGCONT)
        health_during = set()
        killed = False
        while time.monotonic() - locked < LOCK_S:
            if not killed and time.monotonic() - locked > 3:
                # The only worker holds messages it popped (waiting on the lock to claim
                # them) or claimed before the lock: it dies holding them, no goodbye, and
                # a fresh worker is started.
                rows = stack.inbox()
                held = (sum(1 for r in rows if r[1] == "queued") - stack._redis().llen("guanjia:lane:inbound")
                        + sum(1 for r in rows if r[1] == "handling"))
                # On the worker-only path the worker holds messages here; in the web path
                # (the default) the web handles texts itself and the worker may hold none:
                # it is killed all the same and the web's own claims are leased (sweeper).
                if stack.env.get("GUANJIA_HANDLE_IN_WEB") == "0":
                    assert held >= 1, rows
                os.killpg(worker, signal.SIGKILL)
                stack._start("worker2", "worker")
                killed = True
            try:
                h = requests.get(f"http://127.0.0.1:{stack.web_port}/healthz", timeout=4)
                health_during.add((h.status_code, h.json().get("scheduler"), h.json().get("workers")))
            except requests.RequestException:
                pass
            time.sleep(1)
        db.execute("ROLLBACK")
        db.close()
        unlocked = time.time()
        time.sleep(2)  # traffic goes on after the lock
        stream_stop.set()
        streamer.join(5)
        for f in list(futures):
            f.result(timeout=40)

        senders = list(platform.accepted)
        assert "o_long" in senders and len(senders) >= 20, (len(senders), platform.statuses)
        # Refused while the database was locked: the platform was told to try again, never "success".
        assert platform.refused, "the lock refused nothing?"
        assert {s for tries in platform.refused.values() for s in tries} <= {503, "ReadTimeout"}, platform.refused
        assert 500 not in platform.statuses
        result = _wait_all_answered(stack, senders, platform.accepted, timeout=60)
        assert not result["missing"], _lost_report(stack, platform, result["missing"])
        time.sleep(2)  # anything that would answer twice has had time to
        pushed = _pushed_by_recipient(stack)
        twice = {s: (platform.accepted[s], pushed.get(s)) for s in senders
                 if len(platform.accepted[s]) + pushed.get(s, 0) != 1}
        assert not twice, twice
        rows = stack.inbox()
        by_sender: dict[str, list] = {}
        for sender, state, attempts, mode in rows:
            by_sender.setdefault(sender, []).append((state, attempts, mode))
        # Nothing stored that the platform was not told about, unless its last try timed out
        # (the answer came after the platform's 5 s): then it is handled and answered all the same.
        unaccepted = set(by_sender) - set(senders)
        assert all(any(not isinstance(t, int) for t in platform.refused.get(s, [])) for s in unaccepted), \
            {s: platform.refused.get(s) for s in unaccepted}
        assert not set(senders) - set(by_sender)
        assert all(len(v) == 1 and v[0][0] == "done" for v in by_sender.values()), by_sender
        assert all(pushed.get(s, 0) == 1 for s in unaccepted), {s: pushed.get(s) for s in unaccepted}

        # The scheduler survived and is running; every clock due during the lock fired once.
        assert stack.alive()["scheduler"] is None
        with sqlite3.connect(tmp_path / "e2e.db") as conn:
            runs = conn.execute("SELECT job, slot, created_at FROM scheduler_job_runs").fetchall()
        clocks = sorted(j for j, _, _ in runs if j.startswith("clock"))
        assert clocks == ["clock0", "clock1", "clock2"], runs
        assert len({(j, s) for j, s, _ in runs}) == len(runs)
        # During the lock /healthz said what was stuck; now all is well again.
        assert any(code == 503 for code, _, _ in health_during), health_during
        h = requests.get(f"http://127.0.0.1:{stack.web_port}/healthz", timeout=5)
        assert h.status_code == 200 and h.json()["scheduler"] == "ok" and h.json()["workers"] == "ok", h.json()
        assert "Traceback" not in stack.log("web")
        print(f"\naccepted {len(senders)}, refused {len(platform.refused)}, recovered "
              f"{time.time() - unlocked:.0f} s after the lock; health during the lock: {sorted(health_during)}")
    finally:
        stream_stop.set()
        posters.shutdown(wait=False, cancel_futures=True)
        stack.stop()
