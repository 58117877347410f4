"""End to end on real processes: `guanjia serve` under gunicorn, a real
redis-server, `guanjia worker`, `guanjia scheduler` and the fake platform.

Encrypted OA (safe mode) and WeCom messages are posted as the platforms post
them, each three times; every one must be handled exactly once and answered
exactly once (a passive reply in one of the HTTP answers, or one record in the
fake platform's /_sent). Then the same with Redis stopped in the middle:
nothing lost, everything answered once Redis is back.
"""
from __future__ import annotations

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
from tests.conftest import ROOT, RedisServer, free_port, wait_port

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
            "GUANJIA_VAR_DIR": str(tmp / "var"), "GUANJIA_WEB_WORKERS": "2", "GUANJIA_WEB_THREADS": "8",
            "GUANJIA_PASSIVE_BUDGET_S": "3", "GUANJIA_HTTP_TIMEOUT_S": "2", "GUANJIA_OUTBOX_BACKOFF_S": "0.5",
            "GUANJIA_OUTBOX_BACKOFF_MAX_S": "2", "GUANJIA_SCHEDULER_POLL_S": "1", "GUANJIA_SCHEDULER_RENEW_S": "1",
            "GUANJIA_SCHEDULER_LOCK_TTL_S": "3", "PYTHONUNBUFFERED": "1"}

    def _start(self, name: str, *args: str) -> None:
        log = open(self.tmp / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> None:
        self.redis.start()
        subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=self.env, check=True,
                       capture_output=True, timeout=60)
        self._start("fake", "dev", "fake-platform", "--port", str(self.fake_port))
        self._start("web", "serve", "--port", str(self.web_port))
        self._start("worker", "worker")
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
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
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
