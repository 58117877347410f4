"""Issue 13, item 1 (second half): a busy database loses no message.

- The webhook's insert waits for another writer's lock within the passive budget;
  if the lock outlasts it, the answer is 503 (the platform tries again: only a 200
  counts) and the retry is stored, not dropped as a duplicate.
- The worker holds no write lock while it handles a message (claim and commit;
  handle; outcome), so other owners' messages are stored at once meanwhile.
"""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import select

from tests import platform as P


class HeldLock:
    """An exclusive write lock on the SQLite file, as a backup or a stuck writer holds it."""

    def __init__(self, database_url: str) -> None:
        self.db = sqlite3.connect(database_url.split("sqlite:///", 1)[1], timeout=5, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("BEGIN EXCLUSIVE")

    def release(self, after_s: float = 0.0) -> None:
        def go():
            time.sleep(after_s)
            self.db.execute("ROLLBACK")
            self.db.close()
        if after_s:
            threading.Thread(target=go, daemon=True).start()
        else:
            go()


def _rows() -> list[tuple]:
    from store.db import session_scope
    from store.models import InboxMessage

    with session_scope() as s:
        return [(r.sender, r.state, r.attempts) for r in s.scalars(select(InboxMessage).order_by(InboxMessage.id))]


@pytest.fixture
def sqlite_only(env):
    if not env["database_url"].startswith("sqlite"):
        pytest.skip("holds a SQLite file lock")
    return env


def test_a_short_lock_is_waited_out_and_the_message_stored(sqlite_only, app_client, fake_platform):
    lock = HeldLock(sqlite_only["database_url"])
    lock.release(after_s=0.5)
    q, body = P.mp_text_request("o_busy1", "你好", 7001)
    r = app_client.post("/wechat/mp", query_string=q, data=body)
    assert r.status_code == 200 and r.data == b"success"
    assert _rows() == [("o_busy1", "queued", 0)]


def test_a_long_lock_answers_503_and_the_platforms_retry_is_stored(sqlite_only, app_client, fake_platform):
    lock = HeldLock(sqlite_only["database_url"])
    q, body = P.mp_text_request("o_busy2", "你好", 7002)
    t0 = time.monotonic()
    try:
        r = app_client.post("/wechat/mp", query_string=q, data=body)
    finally:
        lock.release()
    took = time.monotonic() - t0
    # Not stored, and said so: not a 500 after 30 s, not "success" for a message we do not have.
    assert r.status_code == 503, (r.status_code, r.data)
    assert took < 4.5, f"answered after {took:.1f} s; the platform gives up after 5 s"
    assert _rows() == []
    # WeChat tries again with the same MsgId: now it is stored (not dropped as a duplicate), once.
    r = app_client.post("/wechat/mp", query_string=q, data=body)
    assert r.status_code == 200
    assert app_client.post("/wechat/mp", query_string=q, data=body).status_code == 200  # a third try
    P.drain_queues()
    assert _rows() == [("o_busy2", "done", 1)]
    assert [c["json"]["touser"] for c in fake_platform.sent("/cgi-bin/message/custom/send")] == ["o_busy2"]


SLOW_S = 2.0


@pytest.fixture
def slow_command():
    """A capability whose handling takes SLOW_S of work without writing (as a slow
    classifier would): registered through the registry, removed afterwards."""
    from handlers import load_capabilities, registry
    from handlers.message import Outcome

    load_capabilities()

    @registry.text_command("test_slow", r"^慢慢想$")
    def _slow(ctx, msg, route):
        time.sleep(SLOW_S)
        return Outcome(replies=["想好了"])

    yield
    registry._text_commands[:] = [c for c in registry._text_commands if c.name != "test_slow"]


def test_other_owners_are_stored_at_once_while_a_message_is_handled(sqlite_only, app_client, fake_platform,
                                                                    slow_command):
    from bot.inbox import pop_and_process

    q, body = P.mp_text_request("o_slow", "慢慢想", 7003)
    assert app_client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    worker = threading.Thread(target=pop_and_process, args=(0,), daemon=True)
    worker.start()
    time.sleep(0.5)  # the worker has claimed the row and is handling it
    timings = []
    for i in range(3):
        q, body = P.mp_text_request(f"o_other{i}", "你好", 7010 + i)
        t0 = time.monotonic()
        r = app_client.post("/wechat/mp", query_string=q, data=body)
        timings.append(time.monotonic() - t0)
        assert r.status_code == 200
    assert max(timings) < 0.8, f"stores waited behind handling: {timings}"
    assert _rows()[0][1] == "handling"  # the claim is committed: its lease is visible to the sweeper
    worker.join(10)
    P.drain_queues()
    assert {s: (st, a) for s, st, a in _rows()} == {
        "o_slow": ("done", 1), "o_other0": ("done", 1), "o_other1": ("done", 1), "o_other2": ("done", 1)}
