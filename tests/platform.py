"""What WeChat and WeCom send, built the way they build it, for tests.

The crypto here is an independent implementation (AES-256-CBC, PKCS#7 to 32
bytes, random(16) + len(4, big endian) + xml + appid), not the project's
`bot.channels.crypto`, so a test that passes proves the project agrees with
the platforms, not with itself. It is checked against WeCom's published
conformance vectors in tests/test_ingress_wecom.py.
"""
from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import threading
import time
from itertools import count

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty

# --- test credentials (also what the `app_client` fixture configures) -----------
MP_APPID = "wx1234567890abcdef"
MP_SECRET = "mp-secret-for-tests"
MP_TOKEN = "guanjiaMpToken"
MP_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters
MP_ACCOUNT = "gh_guanjia0001"  # the account's original id, ToUserName of every message

WECOM_CORP_ID = "ww0123456789abcdef"
WECOM_AGENT_ID = "1000002"
WECOM_SECRET = "wecom-secret-for-tests"
WECOM_TOKEN = "guanjiaWeComToken"
WECOM_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"  # 43 characters

# WeCom's published sample values (PLATFORM.md).
VECTOR_CORP_ID = "wx5823bf96d3bd56c7"
VECTOR_TOKEN = "QDG6eK"
VECTOR_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

_nonces = count(int(time.time()) % 1_000_000 * 1000)


def _nonce() -> str:
    return str(next(_nonces))


def signature(*parts: str) -> str:
    """SHA1 of the sorted, concatenated parts (both platforms)."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


# --- AES message crypto -------------------------------------------------------------

def _key(aes_key: str) -> bytes:
    return base64.b64decode(aes_key + "=")


def encrypt(xml: str, aes_key: str, app_id: str) -> str:
    key = _key(aes_key)
    raw = xml.encode()
    plain = os.urandom(16) + struct.pack(">I", len(raw)) + raw + app_id.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def decrypt(encrypted: str, aes_key: str, app_id: str | None = None) -> str:
    """The inner XML; checks the trailing app id when given."""
    key = _key(aes_key)
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = dec.update(base64.b64decode(encrypted)) + dec.finalize()
    plain = plain[:-plain[-1]]
    length = struct.unpack(">I", plain[16:20])[0]
    xml, tail = plain[20:20 + length], plain[20 + length:]
    if app_id is not None and tail.decode() != app_id:
        raise ValueError(f"reply encrypted for {tail!r}, not {app_id!r}")
    return xml.decode()


def _cdata(v: object) -> str:
    return v if isinstance(v, int) else f"<![CDATA[{v}]]>"


def _xml(fields: dict) -> str:
    inner = "".join(f"<{k}>{_cdata(v) if not isinstance(v, dict) else _xml_inner(v)}</{k}>"
                    for k, v in fields.items())
    return f"<xml>{inner}</xml>"


def _xml_inner(fields: dict) -> str:
    return "".join(f"<{k}>{_cdata(v)}</{k}>" for k, v in fields.items())


# --- Official Account ------------------------------------------------------------------

def mp_url_check(echostr: str = "echo-12345", timestamp: int | None = None, token: str = MP_TOKEN) -> dict:
    ts, nonce = str(timestamp or int(time.time())), _nonce()
    return {"signature": signature(token, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": echostr}


def _mp_request(fields: dict, mode: str, openid: str, created: int | None) -> tuple[dict, bytes]:
    ts, nonce = str(created or int(time.time())), _nonce()
    query = {"signature": signature(MP_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": openid}
    plain = _xml(fields)
    if mode == "plain":
        return query, plain.encode()
    encrypted = encrypt(plain, MP_AES_KEY, MP_APPID)
    query |= {"encrypt_type": "aes", "msg_signature": signature(MP_TOKEN, ts, nonce, encrypted)}
    if mode == "safe":
        body = _xml({"ToUserName": MP_ACCOUNT, "Encrypt": encrypted})
    elif mode == "compat":  # plain fields and the cipher side by side
        body = _xml({**fields, "Encrypt": encrypted})
    else:
        raise ValueError(f"mode must be safe, compat or plain, not {mode!r}")
    return query, body.encode()


def mp_text_request(openid: str, text: str, msg_id: str | int, mode: str = "safe",
                    created: int | None = None) -> tuple[dict, bytes]:
    created = created or int(time.time())
    fields = {"ToUserName": MP_ACCOUNT, "FromUserName": openid, "CreateTime": created, "MsgType": "text",
              "Content": text, "MsgId": int(msg_id)}
    return _mp_request(fields, mode, openid, created)


def mp_media_request(openid: str, msgtype: str, fields: dict, msg_id: str | int, mode: str = "safe",
                     created: int | None = None) -> tuple[dict, bytes]:
    """image (PicUrl, MediaId), voice (MediaId, Format, Recognition), location
    (Location_X, Location_Y, Scale, Label), as the OA sends them."""
    created = created or int(time.time())
    body = {"ToUserName": MP_ACCOUNT, "FromUserName": openid, "CreateTime": created, "MsgType": msgtype,
            **fields, "MsgId": int(msg_id)}
    return _mp_request(body, mode, openid, created)


def mp_event_request(openid: str, event: str, fields: dict | None = None, mode: str = "safe",
                     created: int | None = None) -> tuple[dict, bytes]:
    created = created or int(time.time())
    body = {"ToUserName": MP_ACCOUNT, "FromUserName": openid, "CreateTime": created, "MsgType": "event",
            "Event": event, **(fields or {})}
    return _mp_request(body, mode, openid, created)


def mp_reply(body: bytes | str, encrypted: bool = True) -> dict[str, str]:
    """The passive reply's fields (decrypted and signature-checked in safe mode)."""
    from defusedxml import ElementTree

    root = ElementTree.fromstring(body)
    outer = {c.tag: c.text or "" for c in root}
    if not encrypted:
        return outer
    assert outer["MsgSignature"] == signature(MP_TOKEN, outer["TimeStamp"], outer["Nonce"], outer["Encrypt"])
    return {c.tag: c.text or "" for c in ElementTree.fromstring(decrypt(outer["Encrypt"], MP_AES_KEY, MP_APPID))}


# --- WeCom -------------------------------------------------------------------------------

def wecom_url_check(echo: str = "1616140317555161061", timestamp: int | None = None) -> dict:
    ts, nonce = str(timestamp or int(time.time())), _nonce()
    echostr = encrypt(echo, WECOM_AES_KEY, WECOM_CORP_ID)
    return {"msg_signature": signature(WECOM_TOKEN, ts, nonce, echostr), "timestamp": ts, "nonce": nonce,
            "echostr": echostr}


def _wecom_request(fields: dict, created: int) -> tuple[dict, bytes]:
    ts, nonce = str(created), _nonce()
    encrypted = encrypt(_xml(fields), WECOM_AES_KEY, WECOM_CORP_ID)
    query = {"msg_signature": signature(WECOM_TOKEN, ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
    body = _xml({"ToUserName": WECOM_CORP_ID, "AgentID": WECOM_AGENT_ID, "Encrypt": encrypted})
    return query, body.encode()


def wecom_text_request(userid: str, text: str, msg_id: str | int, created: int | None = None
                       ) -> tuple[dict, bytes]:
    created = created or int(time.time())
    fields = {"ToUserName": WECOM_CORP_ID, "FromUserName": userid, "CreateTime": created, "MsgType": "text",
              "Content": text, "MsgId": int(msg_id), "AgentID": int(WECOM_AGENT_ID)}
    return _wecom_request(fields, created)


def wecom_event_request(userid: str, event: str, fields: dict | None = None, created: int | None = None
                        ) -> tuple[dict, bytes]:
    """template_card_event (EventKey, TaskId, CardType, ResponseCode, SelectedItems as a nested dict),
    change_external_chat (ChatId, ChangeType, UpdateDetail, JoinScene, QuitScene, MemChangeCnt),
    msgaudit_notify (no fields; FromUserName is "sys")."""
    created = created or int(time.time())
    body = {"ToUserName": WECOM_CORP_ID, "FromUserName": userid, "CreateTime": created, "MsgType": "event",
            "Event": event, "AgentID": int(WECOM_AGENT_ID), **(fields or {})}
    return _wecom_request(body, created)


def wecom_reply(body: bytes | str) -> dict[str, str]:
    from defusedxml import ElementTree

    outer = {c.tag: c.text or "" for c in ElementTree.fromstring(body)}
    assert outer["MsgSignature"] == signature(WECOM_TOKEN, outer["TimeStamp"], outer["Nonce"], outer["Encrypt"])
    inner = decrypt(outer["Encrypt"], WECOM_AES_KEY, WECOM_CORP_ID)
    return {c.tag: c.text or "" for c in ElementTree.fromstring(inner)}


def channel_env(fake_base_url: str | None = None) -> dict[str, str]:
    """Environment variables that switch both channels on with the test credentials."""
    env = {"WECHAT_APPID": MP_APPID, "WECHAT_SECRET": MP_SECRET, "WECHAT_TOKEN": MP_TOKEN,
           "WECHAT_AES_KEY": MP_AES_KEY, "WECOM_CORP_ID": WECOM_CORP_ID, "WECOM_AGENT_ID": WECOM_AGENT_ID,
           "WECOM_SECRET": WECOM_SECRET, "WECOM_TOKEN": WECOM_TOKEN, "WECOM_AES_KEY": WECOM_AES_KEY}
    if fake_base_url:
        env |= {"WECHAT_API_BASE": fake_base_url, "WECOM_API_BASE": fake_base_url}
    return env


# --- running queued jobs in-process -------------------------------------------------------

class InProcessWorker(SimpleWorker):
    """SimpleWorker that can also run in a background thread."""

    # SIGALRM-based job timeouts only work in the main thread; a timer thread works anywhere.
    death_penalty_class = TimerDeathPenalty

    # rq installs SIGINT/SIGTERM handlers, which only the main thread may do.
    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            super()._install_signal_handlers()


def drain_queues(names: list[str] | tuple[str, ...] | None = None, rounds: int = 10) -> int:
    """Run every queued job in this process: the inbound lane's messages, then rq
    jobs (SimpleWorker, burst, no fork), repeating while jobs enqueue more jobs;
    returns how many ran."""
    from bot.queues import get_queue, get_redis
    from ground.keys import INBOUND_LANE, QUEUE_NAMES

    from bot.inbox import pop_and_process

    names = names or QUEUE_NAMES
    queues = [get_queue(n) for n in names]
    ran = 0
    for _ in range(rounds):
        # Inbound messages travel on the lane (bot/inbox.py), everything else on rq.
        while "inbound" in names and pop_and_process(0) is not None:
            ran += 1
        waiting = sum(q.count for q in queues)
        if not waiting:
            if "inbound" in names and get_redis().llen(INBOUND_LANE):
                continue
            break
        worker = InProcessWorker(queues, connection=get_redis(), name=f"drain-{os.getpid()}-{_nonce()}")
        worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
        ran += waiting
    return ran


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- talking to the app through its webhooks (a Flask test client) ---------------------

_msg_ids = count(9_300_001)


def owner_says(client, openid: str, text: str) -> None:
    """An owner's text to the Official Account, handled (queued jobs run)."""
    q, body = mp_text_request(openid, text, msg_id=next(_msg_ids))
    assert client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    drain_queues()


def staff_says(client, userid: str, text: str) -> None:
    """A staff member's text in the WeCom app chat, handled."""
    q, body = wecom_text_request(userid, text, msg_id=next(_msg_ids))
    assert client.post("/wecom/app", query_string=q, data=body).status_code == 200
    drain_queues()


def to_owner(fake, openid: str) -> list[str]:
    """The customer-service texts the fake platform delivered to `openid`."""
    return [c["json"]["text"]["content"] for c in fake.sent("/cgi-bin/message/custom/send")
            if c["json"]["touser"] == openid]
