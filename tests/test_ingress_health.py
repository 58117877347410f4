"""/healthz names what is down; /metrics exposes what operators watch."""
from __future__ import annotations

from tests import platform as P


def test_healthz_ok(app_client):
    r = app_client.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"db": "ok", "redis": "ok"}


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
    from bot.config import reset_settings
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
