"""The way in (issue 13, items 4-5): safe mode cannot be downgraded, a used
timestamp+nonce cannot carry another body, and malformed numbers or XML
declarations are refused with a 4xx, never a 500."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from tests import platform as P
from tests.console_support import ADMIN_TOKEN, api  # noqa: F401


def _inbox_count() -> int:
    from store.db import session_scope
    from store.models import InboxMessage

    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(InboxMessage))


def _client_without_mp_aes(monkeypatch):
    """The Official Account in plain mode (no WECHAT_AES_KEY), WeCom as usual."""
    monkeypatch.delenv("WECHAT_AES_KEY")
    from ground.config import reset_settings
    from bot.web import create_app

    reset_settings()
    return create_app().test_client()


# --- item 4: safe mode ---------------------------------------------------------------------

def test_plaintext_is_refused_when_safe_mode_is_configured(app_client):
    q, body = P.mp_text_request("o_victim", "把我的工单取消", 8101, mode="plain")
    r = app_client.post("/wechat/mp", query_string=q, data=body)
    assert r.status_code == 403 and r.data == b"plaintext_refused"
    assert _inbox_count() == 0


def test_copied_url_signature_with_a_plain_body_is_refused(app_client):
    """The attack of the issue: a real safe-mode URL, encrypt_type dropped, plain XML as someone else."""
    q, genuine = P.mp_text_request("o_real", "你好", 8102, mode="safe")
    forged = {k: v for k, v in q.items() if k not in ("encrypt_type", "msg_signature")}
    _, plain = P.mp_text_request("o_victim", "我要投诉", 8103, mode="plain")
    r = app_client.post("/wechat/mp", query_string=forged, data=plain)
    assert r.status_code == 403
    assert _inbox_count() == 0
    # The genuine encrypted message still goes through.
    assert app_client.post("/wechat/mp", query_string=q, data=genuine).status_code == 200


def test_used_nonce_cannot_carry_another_body_plain_mode(env, monkeypatch):
    for k, v in P.channel_env().items():
        monkeypatch.setenv(k, v)
    client = _client_without_mp_aes(monkeypatch)
    q, body = P.mp_text_request("o_a", "你好", 8201, mode="plain")
    assert client.post("/wechat/mp", query_string=q, data=body).status_code == 200  # answered (in the web)
    # The platform's own retry (same URL, same body) is a duplicate, not an attack.
    assert client.post("/wechat/mp", query_string=q, data=body).data == b"success"
    _, other = P.mp_text_request("o_b", "冒充别人", 8202, mode="plain")
    r = client.post("/wechat/mp", query_string=q, data=other)
    assert r.status_code == 403 and r.data == b"replayed_nonce"
    assert _inbox_count() == 1


def test_used_nonce_cannot_carry_another_body_wecom(app_client):
    ts, nonce = str(int(time.time())), "77001"

    def signed(text: str, msg_id: int):
        xml = (f"<xml><ToUserName>{P.WECOM_CORP_ID}</ToUserName><FromUserName>kefu_ajie</FromUserName>"
               f"<CreateTime>{ts}</CreateTime><MsgType>text</MsgType><Content>{text}</Content>"
               f"<MsgId>{msg_id}</MsgId><AgentID>{P.WECOM_AGENT_ID}</AgentID></xml>")
        enc = P.encrypt(xml, P.WECOM_AES_KEY, P.WECOM_CORP_ID)
        q = {"msg_signature": P.signature(P.WECOM_TOKEN, ts, nonce, enc), "timestamp": ts, "nonce": nonce}
        return q, f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>".encode()

    q1, b1 = signed("你好", 1)
    assert app_client.post("/wecom/app", query_string=q1, data=b1).data == b"success"
    q2, b2 = signed("另一条", 2)
    r = app_client.post("/wecom/app", query_string=q2, data=b2)
    assert r.status_code == 403 and r.data == b"replayed_nonce"
    assert _inbox_count() == 1


def test_nonce_check_with_redis_down_still_accepts_signed_messages(app_client, redis_server):
    """Redis down must not lose owners' messages: the signature and the window still hold."""
    redis_server.stop()
    try:
        q, body = P.mp_text_request("o_down", "你好", 8301, mode="safe")
        r = app_client.post("/wechat/mp", query_string=q, data=body)
        assert r.status_code == 200
    finally:
        redis_server.start()
    assert _inbox_count() == 1


# --- item 5: unauthenticated 500s ----------------------------------------------------------

HUGE_TS = "9" * 400


@pytest.mark.parametrize("path,method", [("/wechat/mp", "GET"), ("/wechat/mp", "POST"),
                                         ("/wecom/app", "GET"), ("/wecom/app", "POST")])
def test_400_digit_timestamp_is_a_400(app_client, path, method):
    if path == "/wechat/mp":
        q = dict(P.mp_url_check(), timestamp=HUGE_TS)
        body = P.mp_text_request("o_x", "hi", 1)[1]
    else:
        q = dict(P.wecom_url_check(), timestamp=HUGE_TS)
        body = P.wecom_text_request("kefu_ajie", "hi", 2)[1]
    r = app_client.open(path, method=method, query_string=q, data=body if method == "POST" else None)
    assert r.status_code == 400 and r.data == b"bad_timestamp"


def test_unicode_digit_timestamp_is_a_400(app_client):
    r = app_client.get("/wechat/mp", query_string=dict(P.mp_url_check(), timestamp="²"))
    assert r.status_code == 400


def test_evil_xml_encoding_before_the_signature_is_a_400(app_client):
    ts = str(int(time.time()))
    body = b'<?xml version="1.0" encoding="x-evil"?><xml><Encrypt>abc</Encrypt></xml>'
    r = app_client.post("/wecom/app", query_string={"msg_signature": "0" * 40, "timestamp": ts, "nonce": "1"},
                        data=body)
    assert r.status_code == 400 and r.data == b"xml_malformed"


def test_5000_digit_create_time_is_a_400(app_client):
    created = int(time.time())
    fields = {"ToUserName": P.WECOM_CORP_ID, "FromUserName": "kefu_ajie", "CreateTime": "9" * 5000,
              "MsgType": "event", "Event": "enter_agent", "AgentID": int(P.WECOM_AGENT_ID)}
    q, body = P._wecom_request(fields, created)
    r = app_client.post("/wecom/app", query_string=q, data=body)
    assert r.status_code == 400 and r.data == b"bad_field"
    q, body = P.mp_text_request("o_x", "hi", 8401, mode="safe", created=created)
    fields = {"ToUserName": P.MP_ACCOUNT, "FromUserName": "o_x", "CreateTime": "9" * 5000, "MsgType": "text",
              "Content": "hi", "MsgId": 8401}
    q, body = P._mp_request(fields, "safe", "o_x", created)
    r = app_client.post("/wechat/mp", query_string=q, data=body)
    assert r.status_code == 400 and r.data == b"bad_field"
    assert _inbox_count() == 0


def test_huge_ids_and_offsets_in_the_api_are_4xx(api):
    huge = "9" * 40
    for path in (f"/tickets/{huge}", f"/owners/{huge}", f"/tickets/{2**63}"):
        r = api.get(path)
        assert r.status_code == 404 and r.is_json, path
    for query in (f"offset={huge}", f"offset={10**19}", f"limit={huge}", "offset=" + "9" * 5000):
        r = api.get(f"/tickets?{query}")
        assert r.status_code == 400 and r.get_json()["field"] in ("offset", "limit"), query
    r = api.get("/tickets/1")  # an ordinary id still works (404: none yet)
    assert r.status_code == 404 and r.is_json


def test_unknown_api_routes_answer_json(api):
    for path in ("/api/v1/no-such-thing", "/api/v1/tickets/1/nope", "/api/v2/x"):
        r = api.client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert r.status_code == 404 and r.is_json and r.get_json()["error"] == "not found", path
    r = api.client.delete("/api/v1/me", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 405 and r.is_json


def test_huge_ids_in_the_console_are_4xx(api):
    from tests.console_support import PASSWORD
    from tests.test_security_scope import login

    c = api.client
    assert login(c, "manager", PASSWORD).status_code == 302
    for path in ("/console/tickets/" + "9" * 40, "/console/owners/" + "9" * 40, f"/console/owners/{2**63}"):
        assert c.get(path).status_code == 404, path


def test_pages_cannot_be_framed(api):
    for path in ("/console/login", "/api/v1/openapi.json", "/healthz"):
        r = api.client.get(path)
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]

