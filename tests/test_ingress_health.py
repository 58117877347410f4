"""/healthz names what is down; /metrics exposes what operators watch."""
from __future__ import annotations

from tests import platform as P


def test_healthz_ok(app_client):
    r = app_client.get("/healthz")
    body = r.get_json()
    assert r.status_code == 200 and body["db"] == "ok" and body["redis"] == "ok"
    # Nothing of the scheduler or the workers has ever run against this Redis: said, not failed.
    assert body["scheduler"] == "missing" and body["workers"] == "missing"


def test_healthz_names_redis_when_down(app_client, redis_server):
    redis_server.stop()
    try:
        r = app_client.get("/healthz")
    finally:
        redis_server.start()
    body = r.get_json()
    assert r.status_code == 503 and body["db"] == "ok" and body["redis"].startswith("down")
    assert app_client.get("/healthz").status_code == 200  # back once Redis is


def test_healthz_names_db_when_down(env, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    from ground.config import reset_settings
    from bot.web import create_app
    from store.db import reset_engine

    reset_settings()
    reset_engine()
    r = create_app().test_client().get("/healthz")
    body = r.get_json()
    assert r.status_code == 503 and body["redis"] == "ok" and body["db"].startswith("down")


def test_metrics_exposes_latency_queues_outbox_duplicates_refusals(app_client):
    q, body = P.mp_text_request("o_m", "你好", 424242)
    for _ in range(2):
        app_client.post("/wechat/mp", query_string=q, data=body)
    app_client.post("/wechat/mp", query_string=dict(q, signature="0" * 40), data=body)
    P.drain_queues(["inbound"])
    text = app_client.get("/metrics").data.decode()
    for needle in ('guanjia_request_seconds_bucket{endpoint="wechat_mp"', 'guanjia_queue_depth{queue="inbound"}',
                   'guanjia_outbox_messages{state="queued"}', 'guanjia_inbox_messages{state="done"}',
                   'guanjia_duplicates_total{channel="mp",layer="redis"}',
                   'guanjia_refusals_total{endpoint="wechat_mp",reason="bad_signature"}',
                   'guanjia_messages_accepted_total{channel="mp"}'):
        assert needle in text, needle


def _lane_worker():
    """The real lane consumer loop of `guanjia worker`, in a thread."""
    import threading

    from bot.inbox import consume

    stop = threading.Event()
    t = threading.Thread(target=consume, args=(stop, 0.2), daemon=True)
    t.start()
    return stop, t


def test_healthz_reports_workers_and_503_when_their_heartbeat_is_stale(app_client, monkeypatch):
    import time

    monkeypatch.setenv("GUANJIA_HEALTH_WORKER_STALE_S", "1.5")
    stop, t = _lane_worker()
    try:
        time.sleep(0.5)
        r = app_client.get("/healthz")
        body = r.get_json()
        assert body["workers"] == "ok" and body["detail"]["workers"]["alive"] == 1, body
        assert body["detail"]["workers"]["queue_age_s"] == 0
    finally:
        stop.set()
        t.join(5)
    time.sleep(2)  # the worker is gone: its last beat ages
    r = app_client.get("/healthz")
    body = r.get_json()
    assert r.status_code == 503 and body["workers"] == "stale", body
    assert body["detail"]["workers"]["last_heartbeat_s"] >= 1.5
    assert body["db"] == "ok" and body["redis"] == "ok"


def test_healthz_503_when_messages_wait_too_long_for_a_worker(app_client, frozen_clock):
    """Workers beat but the queue does not move (all busy, or an id lost): stale too."""
    import time

    from bot.inbox import accept
    from ground.keys import INBOUND_LANE
    from bot.queues import get_redis
    from handlers.message import Message

    acc = accept(Message(channel="mp", sender="o_waiting", kind="text", text="你好", msg_id="h1"))
    get_redis().lrem(INBOUND_LANE, 0, acc.inbox_id)  # stored and queued, but no worker will see it
    stop, t = _lane_worker()
    try:
        time.sleep(0.3)
        assert app_client.get("/healthz").status_code == 200  # just arrived
        frozen_clock.advance(minutes=2)
        r = app_client.get("/healthz")
        body = r.get_json()
        assert r.status_code == 503 and body["workers"] == "stale", body
        assert body["detail"]["workers"]["queue_age_s"] >= 120 and body["detail"]["workers"]["alive"] == 1
    finally:
        stop.set()
        t.join(5)
