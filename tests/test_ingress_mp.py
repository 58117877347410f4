"""Official Account webhook: URL check and the three modes, through the real endpoint."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from tests import platform as P


def _inbox():
    from store.db import session_scope
    from store.models import InboxMessage

    with session_scope() as s:
        return [(r.channel, r.sender, r.kind, r.state, r.payload) for r in s.scalars(select(InboxMessage))]


def test_url_check_echoes(app_client):
    r = app_client.get("/wechat/mp", query_string=P.mp_url_check("hello-echo"))
    assert r.status_code == 200 and r.data == b"hello-echo"


def test_url_check_wrong_token_403(app_client):
    r = app_client.get("/wechat/mp", query_string=P.mp_url_check("x", token="not-our-token"))
    assert r.status_code == 403


def _plain_mode_client(monkeypatch):
    """The account in plain mode: no WECHAT_AES_KEY (with one set, plain bodies are refused)."""
    monkeypatch.delenv("WECHAT_AES_KEY")
    from ground.config import reset_settings
    from bot.web import create_app

    reset_settings()
    return create_app().test_client()


@pytest.mark.parametrize("mode", ["safe", "compat", "plain"])
def test_each_mode_is_accepted_stored_and_queued(app_client, mode, monkeypatch):
    if mode == "plain":
        app_client = _plain_mode_client(monkeypatch)
    q, body = P.mp_text_request("o_mode", "你好", 7001, mode=mode)
    r = app_client.post("/wechat/mp", query_string=q, data=body)
    assert r.status_code == 200 and r.data == b"success"  # budget 0: answered later
    [(channel, sender, kind, state, payload)] = _inbox()
    assert (channel, sender, kind, state) == ("mp", "o_mode", "text", "queued")
    assert payload["text"] == "你好" and payload["msg_id"] == "7001"
    assert P.drain_queues(["inbound"]) == 1
    assert _inbox()[0][3] == "done"


def test_compat_mode_uses_the_cipher_not_the_plain_copy(app_client):
    """In compatible mode both copies arrive; the signed cipher is the one to trust."""
    q, body = P.mp_text_request("o_compat", "真的内容", 7002, mode="compat")
    body = body.replace("<Content><![CDATA[真的内容]]>".encode(), "<Content><![CDATA[伪造]]>".encode())
    assert app_client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    assert _inbox()[0][4]["text"] == "真的内容"


def test_event_dedup_by_sender_and_create_time(app_client):
    created = int(time.time())
    for _ in range(3):
        q, body = P.mp_event_request("o_ev", "subscribe", created=created)
        assert app_client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    rows = _inbox()
    assert len(rows) == 1 and rows[0][4]["event"] == "subscribe"


def test_passive_reply_safe_mode_within_budget(app_client, live_worker, monkeypatch):
    """With a worker running and a budget, the reply comes back in the HTTP answer, encrypted."""
    monkeypatch.setenv("GUANJIA_PASSIVE_BUDGET_S", "3")
    from ground.config import reset_settings
    from bot.web import create_app

    reset_settings()
    client = create_app().test_client()
    q, body = P.mp_text_request("o_passive", "你好", 7003, mode="safe")
    started = time.monotonic()
    r = client.post("/wechat/mp", query_string=q, data=body)
    assert time.monotonic() - started < 3
    reply = P.mp_reply(r.data)
    assert reply["ToUserName"] == "o_passive" and reply["FromUserName"] == P.MP_ACCOUNT
    assert reply["MsgType"] == "text" and "管家" in reply["Content"]
    assert not live_worker.errors


def test_passive_reply_plain_mode_is_plain_xml(app_client, live_worker, monkeypatch):
    monkeypatch.setenv("GUANJIA_PASSIVE_BUDGET_S", "3")
    from ground.config import reset_settings
    from bot.web import create_app

    reset_settings()
    q, body = P.mp_text_request("o_plain", "帮助", 7004, mode="plain")
    r = _plain_mode_client(monkeypatch).post("/wechat/mp", query_string=q, data=body)
    reply = P.mp_reply(r.data, encrypted=False)
    assert reply["ToUserName"] == "o_plain" and "报修" in reply["Content"]
