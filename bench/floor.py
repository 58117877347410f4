"""The floor: the least any implementation of issue 2's ingress must do per message,
with no framework of ours in the way. Verify the URL and message signatures, decrypt,
parse (defusedxml), a Redis SET NX for dedup, one INSERT + COMMIT into an inbox table
(raw sqlite3, one connection per thread) and one LPUSH; then answer `success`. No
handling, no passive wait, no reply encryption, no metrics, no logging.

Served by the same gunicorn configuration as the real app (bench/ingress.py), it shows
how close to the bare endpoint a message path that stores before answering can get.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time

import redis
from flask import Flask, Response, request

from bot.channels.common import check_signature, parse_xml
from bot.channels.crypto import ChannelCrypto

app = Flask(__name__)
_crypto = ChannelCrypto(os.environ["WECHAT_TOKEN"], os.environ["WECHAT_AES_KEY"], os.environ["WECHAT_APPID"],
                        enterprise=False)
_token = os.environ["WECHAT_TOKEN"]
_redis = redis.Redis.from_url(os.environ["REDIS_URL"])
_db_path = os.environ["GUANJIA_FLOOR_DB"]
_local = threading.local()


def _db() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = sqlite3.connect(_db_path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY, channel TEXT, dedup_key TEXT, "
                     "sender TEXT, payload TEXT, created_at REAL, UNIQUE (channel, dedup_key))")
    return conn


@app.route("/wechat/mp", methods=["POST"])
def mp() -> Response:
    a = request.args
    if abs(time.time() - int(a["timestamp"])) > 300:
        return Response("stale", status=403)
    check_signature(a.get("signature"), _token, a["timestamp"], a["nonce"])
    outer = parse_xml(request.get_data())
    _crypto.verify(a.get("msg_signature"), a["timestamp"], a["nonce"], outer["Encrypt"])
    fields = parse_xml(_crypto.decrypt(outer["Encrypt"]))
    key = fields["MsgId"]
    if not _redis.set(f"floor:dedup:{key}", "1", nx=True, ex=600):
        return Response("success")
    conn = _db()
    conn.execute("BEGIN")
    cur = conn.execute("INSERT INTO inbox (channel, dedup_key, sender, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                       ("mp", key, fields["FromUserName"], fields.get("Content", ""), time.time()))
    conn.execute("COMMIT")
    _redis.lpush("floor:lane", cur.lastrowid)
    return Response("success", mimetype="text/plain")


def create_app() -> Flask:
    return app
