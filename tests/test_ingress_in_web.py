"""Plain texts handled in the web process (issue 16; GUANJIA_HANDLE_IN_WEB=1, the default):
the inbox row first, already claimed; the outcome in its own short transaction; the
passive reply without the Redis lane and a worker. Everything that makes the worker path
safe still holds: two-layer dedup, exactly once across a take-over, a failure handed to
the worker, replies pushed when the budget is gone. The worker-only path is what
`app_client` drives in the other ingress tests.
"""
from __future__ import annotations

import threading
import time

import pytest
from redis import Redis
from sqlalchemy import func, select

from tests import platform as P


def _rows() -> list[tuple]:
    from store.db import session_scope
    from store.models import InboxMessage

    with session_scope() as s:
        return [(r.sender, r.state, r.attempts, r.reply_mode)
                for r in s.scalars(select(InboxMessage).order_by(InboxMessage.id))]


def _outbox() -> list[tuple]:
    from store.db import session_scope
    from store.models import OutboxMessage

    with session_scope() as s:
        return [(r.recipient, r.source) for r in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]


def _lane() -> list[int]:
    from bot.queues import get_redis
    from ground import keys

    return [int(x) for x in get_redis().lrange(keys.INBOUND_LANE, 0, -1)]


def _client_with(monkeypatch, **env):
    """A new app (settings are read when the app is made) with these variables."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from ground.config import reset_settings
    from bot.web import create_app

    reset_settings()
    return create_app().test_client()


def test_a_plain_question_is_answered_passively_by_the_web_process(in_web_client, fake_platform):
    q, body = P.mp_text_request("o_web", "你好", 9101)
    r = in_web_client.post("/wechat/mp", query_string=q, data=body)
    assert r.status_code == 200 and "管家" in P.mp_reply(r.data)["Content"]
    # Stored, handled once by the web (attempt 1), answered passively: no lane, no push.
    assert _rows() == [("o_web", "done", 1, "passive")]
    assert _lane() == [] and _outbox() == []
    wq, wbody = P.wecom_text_request("kefu_ajie", "你好", 9102)
    r = in_web_client.post("/wecom/app", query_string=wq, data=wbody)
    assert r.status_code == 200 and "管家" in P.wecom_reply(r.data)["Content"]
    assert _rows()[1][1:] == ("done", 1, "passive")


def test_three_tries_are_handled_once_through_both_dedup_layers(in_web_client, env):
    q, body = P.mp_text_request("o_web_dup", "你好", 9103)
    first = in_web_client.post("/wechat/mp", query_string=q, data=body)
    assert "管家" in P.mp_reply(first.data)["Content"]
    assert [in_web_client.post("/wechat/mp", query_string=q, data=body).data for _ in range(2)] == [b"success"] * 2
    Redis.from_url(env["redis_url"]).flushall()  # the first layer forgets: the inbox table's key holds
    assert in_web_client.post("/wechat/mp", query_string=q, data=body).data == b"success"
    assert _rows() == [("o_web_dup", "done", 1, "passive")] and _outbox() == []


def test_a_reply_ready_after_the_budget_is_pushed(in_web_client, fake_platform, monkeypatch):
    client = _client_with(monkeypatch, GUANJIA_PASSIVE_BUDGET_S="0")
    q, body = P.mp_text_request("o_web_late", "你好", 9104)
    assert client.post("/wechat/mp", query_string=q, data=body).data == b"success"
    assert _rows() == [("o_web_late", "done", 1, "pushed")]
    P.drain_queues()
    [cs] = fake_platform.sent("/cgi-bin/message/custom/send")
    assert cs["json"]["touser"] == "o_web_late" and "管家" in cs["json"]["text"]["content"]


def test_a_failure_in_the_web_is_handed_to_the_worker_and_pushed_once(in_web_client, fake_platform, monkeypatch):
    import handlers.dispatch

    real = handlers.dispatch.handle
    calls = {"n": 0}

    def flaky(ctx, msg):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom in the web")
        return real(ctx, msg)

    monkeypatch.setattr(handlers.dispatch, "handle", flaky)
    q, body = P.mp_text_request("o_web_fail", "你好", 9105)
    assert in_web_client.post("/wechat/mp", query_string=q, data=body).data == b"success"
    [(sender, state, attempts, mode)] = _rows()
    assert (state, attempts, mode) == ("failed", 1, "push")  # nobody waits on a reply key for it
    assert len(_lane()) == 1
    assert P.drain_queues() >= 1
    assert _rows() == [("o_web_fail", "done", 2, "pushed")]
    assert [c["json"]["touser"] for c in fake_platform.sent("/cgi-bin/message/custom/send")] == ["o_web_fail"]


def test_a_take_over_while_the_web_handles_leaves_the_message_to_the_worker(in_web_client, fake_platform,
                                                                           frozen_clock, monkeypatch):
    """The web process stalls past the lease (CLAIM_LEASE): the sweeper gives the row to a
    worker, which answers by push; the web's late outcome is dropped. Answered once."""
    import handlers.dispatch
    from bot.sweeper import sweep

    real = handlers.dispatch.handle
    seen = []

    def stalls(ctx, msg):
        out = real(ctx, msg)
        seen.append(msg.sender)
        if len(seen) > 1:  # the worker's attempt
            return out
        frozen_clock.advance(seconds=30)
        assert sweep()["inbox"] == 1  # the lease lapsed: re-queued...
        assert P.drain_queues(["inbound"]) == 1  # ...and a worker handled it (attempt 2)
        return out

    monkeypatch.setattr(handlers.dispatch, "handle", stalls)
    q, body = P.mp_text_request("o_web_stall", "你好", 9106)
    assert in_web_client.post("/wechat/mp", query_string=q, data=body).data == b"success"
    monkeypatch.setattr(handlers.dispatch, "handle", real)
    assert _rows() == [("o_web_stall", "done", 2, "pushed")]
    P.drain_queues()
    assert [c["json"]["touser"] for c in fake_platform.sent("/cgi-bin/message/custom/send")] == ["o_web_stall"]
    assert len(_outbox()) == 1


@pytest.fixture
def writing_command():
    """A command whose handler writes (a push to staff): its session commits with the outcome."""
    from handlers import load_capabilities, registry
    from handlers.message import Outcome, Push

    load_capabilities()

    @registry.text_command("test_writes", r"^通知管家$")
    def _writes(ctx, msg, route):
        return Outcome(replies=["已通知"], pushes=[Push(channel="wecom", recipient="kefu_ajie", kind="text",
                                                     payload={"content": "有业主找您"},
                                                     dedup_key=f"test:{msg.msg_id}")])

    yield
    registry._text_commands[:] = [c for c in registry._text_commands if c.name != "test_writes"]


def test_a_handler_that_writes_commits_its_rows_with_the_outcome(in_web_client, fake_platform, writing_command):
    q, body = P.mp_text_request("o_web_write", "通知管家", 9107)
    r = in_web_client.post("/wechat/mp", query_string=q, data=body)
    assert P.mp_reply(r.data)["Content"] == "已通知"
    assert _rows() == [("o_web_write", "done", 1, "passive")]
    assert _outbox() == [("kefu_ajie", None)] or [o[0] for o in _outbox()] == ["kefu_ajie"]
    P.drain_queues()
    assert [c["json"]["touser"] for c in fake_platform.sent("/cgi-bin/message/send")] == ["kefu_ajie"]


def test_other_kinds_and_the_setting_off_go_through_the_worker(in_web_client, monkeypatch):
    q, body = P.mp_event_request("o_web_event", "subscribe")
    assert in_web_client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    assert _rows()[0][1] in ("queued", "done") and len(_lane()) <= 1
    client = _client_with(monkeypatch, GUANJIA_HANDLE_IN_WEB="0")
    q, body = P.mp_text_request("o_web_off", "你好", 9108)
    client.post("/wechat/mp", query_string=q, data=body)
    assert _rows()[-1][:3] == ("o_web_off", "queued", 0)


def test_redis_down_the_text_is_stored_for_the_sweeper(in_web_client, redis_server):
    from bot.sweeper import sweep

    q, body = P.mp_text_request("o_web_outage", "你好", 9109)
    redis_server.stop()
    try:
        assert in_web_client.post("/wechat/mp", query_string=q, data=body).data == b"success"
    finally:
        redis_server.start()
    assert _rows() == [("o_web_outage", "received", 0, "push")]
    assert sweep()["inbox"] == 1 and P.drain_queues() >= 1
    assert _rows() == [("o_web_outage", "done", 1, "pushed")]


def test_group_commit_gathers_concurrent_rows_and_a_duplicate_fails_alone(env, monkeypatch):
    """Many request threads, few transactions; a duplicate in a batch is that row's answer only."""
    monkeypatch.setenv("GUANJIA_GROUP_COMMIT_MS", "20")
    from ground.config import reset_settings
    from bot.inbox import _Duplicate, _store
    from handlers.message import Message
    from store import group_commit
    from store.models import InboxMessage

    reset_settings()
    results: dict[int, object] = {}

    def one(i: int) -> None:
        msg = Message(channel="mp", sender=f"o_gc_{i}", text="你好", msg_id=str(9200 + (i if i < 24 else 0)))
        try:
            results[i] = _store(msg, msg.dedup_key(), True, 5.0)
        except _Duplicate:
            results[i] = "duplicate"

    threads = [threading.Thread(target=one, args=(i,)) for i in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    w = group_commit.writer(0.02)
    assert sorted(r for r in results.values() if r == "duplicate") == ["duplicate"]
    assert len({r for r in results.values() if isinstance(r, int)}) == 24
    assert w.jobs == 25 and w.batches < 25, (w.jobs, w.batches)
    from store.db import session_scope

    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(InboxMessage)) == 24


def _calls(r: Redis, *names: str) -> dict[str, int]:
    stats = r.info("commandstats")
    return {n: int(stats.get(f"cmdstat_{n}", {}).get("calls", 0)) for n in names}


def test_a_message_costs_two_redis_round_trips_and_a_replay_records_nothing(in_web_client, env):
    """The nonce check runs in the dedup's round trip (bot/inbox.py::_first_layer, one script)
    and the 'stored' mark goes after the commit (its batch's pipeline): no GET, one SET. A
    nonce used again for another body is refused and leaves no dedup key behind."""
    from ground import keys
    from handlers.message import Message

    r = Redis.from_url(env["redis_url"])
    q0, body0 = P.mp_text_request("o_first", "你好", 9300)  # the server learns the script (SCRIPT LOAD once)
    assert in_web_client.post("/wechat/mp", query_string=q0, data=body0).status_code == 200
    q, body = P.mp_text_request("o_trip", "你好", 9301)
    before = _calls(r, "evalsha", "eval", "set", "get")
    assert in_web_client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    after = _calls(r, "evalsha", "eval", "set", "get")
    assert after["evalsha"] + after["eval"] - before["evalsha"] - before["eval"] == 1
    # Redis counts the script's own SETs (nonce, pending) as commands, not as round trips.
    assert (after["set"] - before["set"], after["get"] - before["get"]) == (2 + 1, 0)
    assert r.get(keys.dedup("mp", Message(channel="mp", sender="o_trip", msg_id="9301").dedup_key())) == b"1"
    _, other = P.mp_text_request("o_other", "冒充别人", 9302)  # a valid body of its own, under the first URL
    resp = in_web_client.post("/wechat/mp", query_string=q, data=other)
    assert resp.status_code == 403
    assert r.get(keys.dedup("mp", Message(channel="mp", sender="o_other", msg_id="9302").dedup_key())) is None
    assert [row[0] for row in _rows()] == ["o_first", "o_trip"]


def test_group_commit_writes_a_lone_row_at_once(env, monkeypatch):
    """At a quiet hour a message is not held back waiting for company: the writer lingers
    only while requests come in together (a lingering writer would hold each
    write the whole 50 ms)."""
    monkeypatch.setenv("GUANJIA_GROUP_COMMIT_MS", "50")
    from ground.config import reset_settings
    from bot.inbox import _store
    from handlers.message import Message
    from store import group_commit

    reset_settings()
    took = []
    for i in range(5):
        msg = Message(channel="mp", sender=f"o_lone_{i}", text="你好", msg_id=str(9300 + i))
        t0 = time.monotonic()
        assert isinstance(_store(msg, msg.dedup_key(), True, 5.0), int)
        took.append(time.monotonic() - t0)
    w = group_commit.writer(0.05)
    assert w.batches == 5
    # Lingering, every write would take 50 ms or more (min: a loaded machine may slow one).
    assert min(took[1:]) < 0.045, took
