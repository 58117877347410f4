"""Bad input is refused cleanly: the right status, logged with the reason, no
traceback, and the service keeps answering."""
from __future__ import annotations

import logging
import time

import pytest

from tests import platform as P

BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<xml><ToUserName>gh</ToUserName><FromUserName>o_x</FromUserName><CreateTime>1</CreateTime>'
        b'<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>')


def _mp_forged():
    q, body = P.mp_text_request("o_x", "hi", 1, mode="safe")
    return "/wechat/mp", dict(q, msg_signature="0" * 40), body


def _mp_forged_url_signature():
    q, body = P.mp_text_request("o_x", "hi", 1, mode="plain")
    return "/wechat/mp", dict(q, signature="f" * 40), body


def _mp_stale():
    q, body = P.mp_text_request("o_x", "hi", 2, mode="safe", created=int(time.time()) - 3600)
    return "/wechat/mp", q, body


def _mp_bomb_plain():
    q, _ = P.mp_text_request("o_x", "hi", 3, mode="plain")
    return "/wechat/mp", q, BOMB


def _mp_bomb_inside_cipher():
    """The entity bomb hidden inside a correctly signed cipher."""
    ts, nonce = str(int(time.time())), "4242"
    enc = P.encrypt(BOMB.decode(), P.MP_AES_KEY, P.MP_APPID)
    q = {"signature": P.signature(P.MP_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
         "msg_signature": P.signature(P.MP_TOKEN, ts, nonce, enc)}
    return "/wechat/mp", q, f"<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>".encode()


def _mp_huge():
    q, _ = P.mp_text_request("o_x", "hi", 4, mode="plain")
    return "/wechat/mp", q, b"<xml>" + b"a" * (10 * 1024 * 1024) + b"</xml>"


def _mp_missing_msgid():
    created = int(time.time())
    fields = {"ToUserName": P.MP_ACCOUNT, "FromUserName": "o_x", "CreateTime": created, "MsgType": "text",
              "Content": "hi"}
    q, body = P._mp_request(fields, "safe", "o_x", created)
    return "/wechat/mp", q, body


def _mp_missing_encrypt():
    q, _ = P.mp_text_request("o_x", "hi", 6, mode="safe")
    return "/wechat/mp", q, b"<xml><ToUserName>gh</ToUserName></xml>"


def _mp_malformed():
    q, _ = P.mp_text_request("o_x", "hi", 7, mode="plain")
    return "/wechat/mp", q, b"<xml><ToUserName>gh</ToUserName"


def _wecom_forged():
    q, body = P.wecom_text_request("kefu_ajie", "hi", 8)
    return "/wecom/app", dict(q, msg_signature="1" * 40), body


def _wecom_stale():
    q, body = P.wecom_text_request("kefu_ajie", "hi", 9, created=int(time.time()) - 3600)
    return "/wecom/app", q, body


def _wecom_missing_field():
    ts, nonce = str(int(time.time())), "99"
    xml = f"<xml><ToUserName>{P.WECOM_CORP_ID}</ToUserName><CreateTime>{ts}</CreateTime><MsgType>text</MsgType></xml>"
    enc = P.encrypt(xml, P.WECOM_AES_KEY, P.WECOM_CORP_ID)
    q = {"msg_signature": P.signature(P.WECOM_TOKEN, ts, nonce, enc), "timestamp": ts, "nonce": nonce}
    return "/wecom/app", q, f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>".encode()


def _wecom_other_corp():
    """Signed with our token but encrypted for another corp id."""
    ts, nonce = str(int(time.time())), "98"
    enc = P.encrypt("<xml><FromUserName>u</FromUserName></xml>", P.WECOM_AES_KEY, "wwsomeoneelse")
    q = {"msg_signature": P.signature(P.WECOM_TOKEN, ts, nonce, enc), "timestamp": ts, "nonce": nonce}
    return "/wecom/app", q, f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>".encode()


def _wecom_bad_base64():
    ts, nonce = str(int(time.time())), "97"
    enc = "not*base64"
    q = {"msg_signature": P.signature(P.WECOM_TOKEN, ts, nonce, enc), "timestamp": ts, "nonce": nonce}
    return "/wecom/app", q, f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>".encode()


CASES = [
    (_mp_forged, 403, "bad_signature"),
    (_mp_forged_url_signature, 403, "bad_signature"),
    (_mp_stale, 403, "stale_timestamp"),
    (_mp_bomb_plain, 400, "xml_forbidden"),
    (_mp_bomb_inside_cipher, 400, "xml_forbidden"),
    (_mp_huge, 413, "body_too_large"),
    (_mp_missing_msgid, 400, "missing_field"),
    (_mp_missing_encrypt, 400, "missing_field"),
    (_mp_malformed, 400, "xml_malformed"),
    (_wecom_forged, 403, "bad_signature"),
    (_wecom_stale, 403, "stale_timestamp"),
    (_wecom_missing_field, 400, "missing_field"),
    (_wecom_other_corp, 403, "wrong_app_id"),
    (_wecom_bad_base64, 400, "undecryptable"),
]


@pytest.mark.parametrize("build,status,reason", CASES, ids=[c[0].__name__.strip("_") for c in CASES])
def test_refused_logged_and_still_answering(app_client, caplog, build, status, reason):
    path, q, body = build()
    with caplog.at_level(logging.INFO):
        r = app_client.post(path, query_string=q, data=body)
    assert r.status_code == status and r.data.decode() == reason
    refusals = [rec for rec in caplog.records if "refused" in rec.getMessage()]
    assert len(refusals) == 1 and reason in refusals[0].getMessage()
    assert all(rec.exc_info is None and rec.levelno < logging.ERROR for rec in caplog.records)
    assert "Traceback" not in caplog.text
    # Nothing was stored, and the next genuine message goes through.
    from sqlalchemy import func, select

    from store.db import session_scope
    from store.models import InboxMessage

    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(InboxMessage)) == 0
    q, body = P.mp_text_request("o_ok", "你好", 99999, mode="safe")
    assert app_client.post("/wechat/mp", query_string=q, data=body).data == b"success"


def test_refusals_counted_in_metrics(app_client):
    path, q, body = _mp_forged()
    app_client.post(path, query_string=q, data=body)
    text = app_client.get("/metrics").data.decode()
    line = [ln for ln in text.splitlines()
            if ln.startswith("guanjia_refusals_total{") and 'reason="bad_signature"' in ln and "wechat_mp" in ln]
    assert line and float(line[0].rsplit(" ", 1)[1]) >= 1


def test_channel_not_configured_404(env):
    from bot.web import create_app

    r = create_app().test_client().post("/wechat/mp", data=b"<xml/>")
    assert r.status_code == 404
