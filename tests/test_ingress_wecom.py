"""WeCom webhook: URL check, the published conformance vectors, messages and the
events wechatpy 1.8 does not know, through the real endpoint."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from tests import platform as P
from tests.conftest import WECOM_VECTOR

URL_VECTOR = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
              "nonce": "263014780",
              "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="}
MSG_VECTOR = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813",
              "nonce": "1372623149"}


def _inbox():
    from store.db import session_scope
    from store.models import InboxMessage

    with session_scope() as s:
        return [(r.sender, r.kind, r.state, r.payload) for r in s.scalars(select(InboxMessage).order_by(InboxMessage.id))]


@pytest.fixture
def vector_client(env, monkeypatch):
    """The app configured with WeCom's sample credentials. The vectors date from
    2014, so the timestamp window is switched off (GUANJIA_TIMESTAMP_WINDOW_S=0)."""
    for k, v in {"WECOM_CORP_ID": P.VECTOR_CORP_ID, "WECOM_TOKEN": P.VECTOR_TOKEN,
                 "WECOM_AES_KEY": P.VECTOR_AES_KEY, "WECOM_AGENT_ID": "218",
                 "GUANJIA_TIMESTAMP_WINDOW_S": "0", "GUANJIA_PASSIVE_BUDGET_S": "0"}.items():
        monkeypatch.setenv(k, v)
    from ground.config import reset_settings
    from bot.web import create_app

    reset_settings()
    return create_app().test_client()


def test_independent_crypto_agrees_with_vectors():
    """tests/platform.py's own AES code decrypts the published vectors."""
    assert P.decrypt(URL_VECTOR["echostr"], P.VECTOR_AES_KEY, P.VECTOR_CORP_ID) == "1616140317555161061"
    enc = WECOM_VECTOR.read_text().split("<![CDATA[")[2].split("]]>")[0]
    assert P.signature(P.VECTOR_TOKEN, MSG_VECTOR["timestamp"], MSG_VECTOR["nonce"], enc) == MSG_VECTOR["msg_signature"]
    assert "<Content><![CDATA[hello]]></Content>" in P.decrypt(enc, P.VECTOR_AES_KEY, P.VECTOR_CORP_ID)


def test_url_vector_through_http(vector_client):
    r = vector_client.get("/wecom/app", query_string=URL_VECTOR)
    assert r.status_code == 200 and r.data == b"1616140317555161061"


def test_message_vector_through_http(vector_client):
    body = WECOM_VECTOR.read_bytes()
    r = vector_client.post("/wecom/app", query_string=MSG_VECTOR, data=body)
    assert r.status_code == 200 and r.data == b"success"
    [(sender, kind, state, payload)] = _inbox()
    assert (sender, kind, payload["text"], payload["msg_id"], payload["agent_id"]) == (
        "mycreate", "text", "hello", "4561255354251345929", "218")


def test_vector_refused_with_the_default_window(env, monkeypatch):
    """Same vector, window on: a 2014 timestamp is stale."""
    for k, v in {"WECOM_CORP_ID": P.VECTOR_CORP_ID, "WECOM_TOKEN": P.VECTOR_TOKEN,
                 "WECOM_AES_KEY": P.VECTOR_AES_KEY}.items():
        monkeypatch.setenv(k, v)
    from ground.config import reset_settings
    from bot.web import create_app

    reset_settings()
    r = create_app().test_client().get("/wecom/app", query_string=URL_VECTOR)
    assert r.status_code == 403 and b"stale_timestamp" in r.data


def test_url_vector_with_a_flipped_signature_403(vector_client):
    bad = dict(URL_VECTOR, msg_signature="5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd4")
    assert vector_client.get("/wecom/app", query_string=bad).status_code == 403


def test_fresh_url_check(app_client):
    r = app_client.get("/wecom/app", query_string=P.wecom_url_check("987654321"))
    assert r.status_code == 200 and r.data == b"987654321"


def test_text_message_handled(app_client):
    q, body = P.wecom_text_request("kefu_xiaomei", "帮助", 880001)
    assert app_client.post("/wecom/app", query_string=q, data=body).data == b"success"
    assert P.drain_queues(["inbound"]) == 1
    [(sender, kind, state, payload)] = _inbox()
    assert (sender, kind, state, payload["chat"]) == ("kefu_xiaomei", "text", "done", "staff")


def test_template_card_event_is_typed(app_client):
    q, body = P.wecom_event_request("weixiu_laozhou", "template_card_event", {
        "EventKey": "ticket:accept:T12", "TaskId": "task-T12-1", "CardType": "button_interaction",
        "ResponseCode": "rc-abc", "SelectedItems": {"SelectedItem": "x"}})
    assert app_client.post("/wecom/app", query_string=q, data=body).status_code == 200
    [(_, kind, _, payload)] = _inbox()
    assert kind == "event" and payload["event"] == "template_card_event"
    assert payload["data"]["EventKey"] == "ticket:accept:T12" and payload["data"]["TaskId"] == "task-T12-1"
    assert payload["data"]["ResponseCode"] == "rc-abc"


def test_change_external_chat_event_is_typed(app_client):
    q, body = P.wecom_event_request("sys", "change_external_chat", {
        "ChatId": "wr_vip_01", "ChangeType": "update", "UpdateDetail": "add_member", "JoinScene": 1,
        "MemChangeCnt": 1})
    assert app_client.post("/wecom/app", query_string=q, data=body).status_code == 200
    [(_, kind, _, payload)] = _inbox()
    assert payload["event"] == "change_external_chat" and payload["group_id"] == "wr_vip_01"
    assert payload["data"]["UpdateDetail"] == "add_member" and payload["data"]["JoinScene"] == "1"


def test_msgaudit_notify_event_and_its_retries(app_client):
    created = int(time.time())
    for _ in range(3):
        q, body = P.wecom_event_request("sys", "msgaudit_notify", created=created)
        assert app_client.post("/wecom/app", query_string=q, data=body).status_code == 200
    [(sender, kind, _, payload)] = _inbox()
    assert (sender, kind, payload["event"]) == ("sys", "event", "msgaudit_notify")
    P.drain_queues()
    assert _inbox()[0][2] == "done"


def test_passive_reply_encrypted_for_the_corp(app_client, live_worker, monkeypatch):
    monkeypatch.setenv("GUANJIA_PASSIVE_BUDGET_S", "3")
    from ground.config import reset_settings
    from bot.web import create_app

    reset_settings()
    q, body = P.wecom_text_request("kefu_ajie", "你好", 880002)
    r = create_app().test_client().post("/wecom/app", query_string=q, data=body)
    reply = P.wecom_reply(r.data)
    assert reply["ToUserName"] == "kefu_ajie" and reply["MsgType"] == "text" and reply["Content"]
