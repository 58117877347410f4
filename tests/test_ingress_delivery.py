"""Three tries handled once (Redis layer, then the inbox table after a FLUSHALL),
nothing lost when Redis is down at accept, replies passive or pushed."""
from __future__ import annotations

import time

from redis import Redis
from sqlalchemy import func, select

from tests import platform as P


def _count(model, *where) -> int:
    from store.db import session_scope

    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _metric(client, name: str, *labels: str) -> float:
    total = 0.0
    for ln in client.get("/metrics").data.decode().splitlines():
        if ln.startswith(name + "{") and all(lb in ln for lb in labels):
            total += float(ln.rsplit(" ", 1)[1])
    return total


def _post3(client, path, q, body) -> list[bytes]:
    return [client.post(path, query_string=q, data=body).data for _ in range(3)]


def test_three_tries_handled_once_redis_then_db_layer(app_client, env):
    from store.models import InboxMessage, OutboxMessage

    before_redis = _metric(app_client, "guanjia_duplicates_total", 'layer="redis"')
    before_db = _metric(app_client, "guanjia_duplicates_total", 'layer="db"')
    q, body = P.mp_text_request("o_dup", "你好", 5551, mode="safe")
    wq, wbody = P.wecom_text_request("kefu_ajie", "你好", 5552)
    assert _post3(app_client, "/wechat/mp", q, body) == [b"success"] * 3
    assert _post3(app_client, "/wecom/app", wq, wbody) == [b"success"] * 3
    assert _count(InboxMessage) == 2
    assert _metric(app_client, "guanjia_duplicates_total", 'layer="redis"') - before_redis == 4
    assert P.drain_queues(["inbound"]) == 2

    # Redis loses everything (FLUSHALL); the retries now meet the inbox table's unique key.
    Redis.from_url(env["redis_url"]).flushall()
    assert _post3(app_client, "/wechat/mp", q, body) == [b"success"] * 3
    assert _post3(app_client, "/wecom/app", wq, wbody) == [b"success"] * 3
    assert _metric(app_client, "guanjia_duplicates_total", 'layer="db"') - before_db == 2  # then Redis knows again
    assert P.drain_queues(["inbound"]) == 0
    assert _count(InboxMessage) == 2 and _count(InboxMessage, InboxMessage.attempts == 1) == 2
    # One reply each, pushed through the outbox (budget 0 s), never two.
    assert _count(OutboxMessage, OutboxMessage.source.like("inbox:%")) == 2


def test_job_run_twice_handles_once(app_client):
    """A re-queued job (sweeper, worker crash) cannot handle a message a second time."""
    from bot.inbox import enqueue
    from bot.tasks import process_inbox
    from store.models import OutboxMessage

    q, body = P.mp_text_request("o_twice", "帮助", 5553)
    app_client.post("/wechat/mp", query_string=q, data=body)
    assert P.drain_queues(["inbound"]) == 1
    assert process_inbox(1) == "already handled"
    assert enqueue(1) is True and P.drain_queues(["inbound"]) == 1
    assert _count(OutboxMessage) == 1


def test_redis_down_at_accept_row_kept_then_swept(app_client, redis_server):
    from bot.sweeper import sweep
    from store.models import InboxMessage, OutboxMessage

    q, body = P.mp_text_request("o_outage", "你好", 5554, mode="safe")
    wq, wbody = P.wecom_text_request("kefu_xiaomei", "你好", 5555)
    redis_server.stop()
    try:
        assert app_client.post("/wechat/mp", query_string=q, data=body).data == b"success"
        assert app_client.post("/wecom/app", query_string=wq, data=wbody).data == b"success"
        # A retry while Redis is still down is caught by the inbox table.
        assert app_client.post("/wechat/mp", query_string=q, data=body).data == b"success"
        assert app_client.get("/healthz").status_code == 503
        assert _count(InboxMessage, InboxMessage.state == "received") == 2
        assert sweep()["inbox"] == 0  # still down: nothing queued, nothing lost
    finally:
        redis_server.start()
    assert sweep()["inbox"] == 2
    assert P.drain_queues(["inbound"]) == 2
    assert _count(InboxMessage, InboxMessage.state == "done") == 2
    # Nobody waited for these passively: both replies go out as pushes.
    rows = _outbox_rows()
    assert sorted(r[0] for r in rows) == ["kefu_xiaomei", "o_outage"]
    assert app_client.get("/healthz").status_code == 200


def _outbox_rows():
    from store.db import session_scope
    from store.models import OutboxMessage

    with session_scope() as s:
        return [(r.recipient, r.kind, r.payload) for r in s.scalars(select(OutboxMessage))]


def test_slow_worker_means_success_then_push(app_client, monkeypatch):
    """Budget runs out before any worker answers: `success` now, the reply is pushed later."""
    monkeypatch.setenv("GUANJIA_PASSIVE_BUDGET_S", "0.3")
    from ground.config import reset_settings
    from bot.web import create_app

    reset_settings()
    q, body = P.mp_text_request("o_slow", "你好", 5556)
    started = time.monotonic()
    r = create_app().test_client().post("/wechat/mp", query_string=q, data=body)
    # At most the budget, counted from the platform's signed timestamp (whole seconds, so
    # this request may already count as up to a second old and not wait at all).
    assert r.data == b"success" and time.monotonic() - started < 2
    P.drain_queues(["inbound"])
    [(recipient, kind, payload)] = _outbox_rows()
    assert (recipient, kind) == ("o_slow", "text") and "管家" in payload["content"]


def test_fast_worker_means_passive_reply_and_no_push(app_client, live_worker, monkeypatch):
    monkeypatch.setenv("GUANJIA_PASSIVE_BUDGET_S", "3")
    from ground.config import reset_settings
    from bot.web import create_app
    from store.models import InboxMessage

    reset_settings()
    q, body = P.mp_text_request("o_fast", "你好", 5557)
    r = create_app().test_client().post("/wechat/mp", query_string=q, data=body)
    assert "管家" in P.mp_reply(r.data)["Content"]
    time.sleep(0.1)
    assert _outbox_rows() == []
    assert _count(InboxMessage, InboxMessage.reply_mode == "passive") == 1


def test_missed_budget_reply_reaches_the_platform_as_a_push(app_client, fake_platform):
    """`success` now; the worker's reply leaves through the customer-service API (OA)
    and as an app message (WeCom), recorded by the fake platform."""
    q, body = P.mp_text_request("o_push", "你好", 5558)
    wq, wbody = P.wecom_text_request("kefu_ajie", "你好", 5559)
    assert app_client.post("/wechat/mp", query_string=q, data=body).data == b"success"
    assert app_client.post("/wecom/app", query_string=wq, data=wbody).data == b"success"
    P.drain_queues()
    [cs] = fake_platform.sent("/cgi-bin/message/custom/send")
    assert cs["json"]["touser"] == "o_push" and "管家" in cs["json"]["text"]["content"]
    [app] = fake_platform.sent("/cgi-bin/message/send")
    assert app["json"]["touser"] == "kefu_ajie" and app["json"]["msgtype"] == "text"
    assert {r[0] for r in _outbox_rows()} == {"o_push", "kefu_ajie"}
    from store.db import session_scope
    from store.models import OutboxMessage

    with session_scope() as s:
        assert {r.state for r in s.scalars(select(OutboxMessage))} == {"sent"}


def test_failed_handling_is_retried_by_the_sweeper_then_given_up(app_client, frozen_clock, monkeypatch):
    """A passing failure (here: the first two tries raise) is retried a minute later and
    answered; a message that always fails stops after MAX_INBOX_ATTEMPTS, recorded."""
    import handlers.dispatch
    from bot.sweeper import MAX_INBOX_ATTEMPTS, sweep
    from store.models import InboxMessage

    real = handlers.dispatch.handle
    calls = {"n": 0}

    def flaky(ctx, msg):
        calls["n"] += 1
        if msg.sender == "o_broken" or calls["n"] <= 2:
            raise RuntimeError("database is locked")
        return real(ctx, msg)

    monkeypatch.setattr(handlers.dispatch, "handle", flaky)
    for sender, mid in (("o_flaky", 5560), ("o_broken", 5561)):
        q, body = P.mp_text_request(sender, "你好", mid)
        assert app_client.post("/wechat/mp", query_string=q, data=body).data == b"success"
    P.drain_queues(["inbound"])
    assert _count(InboxMessage, InboxMessage.state == "failed") == 2
    assert sweep()["inbox"] == 0  # not yet: a minute between tries
    for _ in range(MAX_INBOX_ATTEMPTS + 2):
        frozen_clock.advance(minutes=2)
        sweep()
        P.drain_queues(["inbound"])
    from store.db import session_scope

    with session_scope() as s:
        rows = {r.sender: (r.state, r.attempts, r.error) for r in s.scalars(select(InboxMessage))}
    assert rows["o_flaky"][0] == "done"
    assert rows["o_broken"][:2] == ("failed", MAX_INBOX_ATTEMPTS) and "locked" in rows["o_broken"][2]
    assert [r[0] for r in _outbox_rows()] == ["o_flaky"]  # answered once, by push
