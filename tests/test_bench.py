"""The benchmark's own parts measure what they claim (issue 16): the WeRoBot peer does
its real work (decrypts, echoes, encrypts the passive reply, refuses a bad signature),
fanout's window count is the platform's, and the profile puts a stack into the right step."""
from __future__ import annotations

import importlib
import sys

import pytest

from tests import platform as P


@pytest.fixture
def werobot_app(monkeypatch):
    pytest.importorskip("werobot", reason="the bench extra is not installed: pip install -e '.[bench]'")
    for k, v in P.channel_env().items():
        monkeypatch.setenv(k, v)
    sys.modules.pop("bench.werobot_echo", None)  # it reads the credentials at import
    return importlib.import_module("bench.werobot_echo").create_app()


def test_werobot_peer_echoes_with_an_encrypted_passive_reply(werobot_app):
    from werkzeug.test import Client

    q, body = P.mp_text_request("o_peer_1", "物业电话多少", 424242, mode="safe")
    r = Client(werobot_app).post("/wechat/mp", query_string=q, data=body, content_type="text/xml")
    assert r.status_code == 200
    reply = P.mp_reply(r.data)  # signature checked, decrypted
    assert reply["Content"] == "物业电话多少" and reply["ToUserName"] == "o_peer_1"


def test_werobot_peer_refuses_a_bad_signature(werobot_app):
    from werkzeug.test import Client

    q, body = P.mp_text_request("o_peer_2", "你好", 424243, mode="safe")
    r = Client(werobot_app).post("/wechat/mp", query_string=q | {"signature": "0" * 40}, data=body,
                                 content_type="text/xml")
    assert r.status_code == 403


def test_fanout_counts_the_busiest_window_as_the_platform_saw_it():
    from bench.fanout import max_in_window

    assert max_in_window([0.0, 0.5, 0.9, 1.0, 1.05, 3.0], 1.0) == 4  # (0.05, 1.05]: 0.5, 0.9, 1.0, 1.05
    assert max_in_window([0.0, 1.0, 2.0], 1.0) == 1  # a call exactly one window later is in the next
    assert max_in_window([0.0, 0.1, 0.2], 1.0) == 3
    assert max_in_window([], 1.0) == 0


def test_profile_puts_each_stack_into_its_step(tmp_path):
    from bench.profile_mp import classify

    raw = tmp_path / "web.txt"
    raw.write_text(
        "run (gunicorn/workers/gthread.py:1);_serve (bot/webhooks.py:43);open (bot/channels/mp.py:45);"
        "decrypt (bot/channels/crypto.py:30) 7\n"
        "_serve (bot/webhooks.py:44);accept (bot/inbox.py:63);set (redis/commands/core.py:2) 3\n"
        "_serve (bot/webhooks.py:44);accept (bot/inbox.py:75);execute (sqlalchemy/engine/base.py:1) 5\n"
        "handle (gunicorn/workers/gthread.py:9) 2\n")
    assert classify(raw) == {"decrypt (AES-CBC)": 7, "dedup (Redis SET NX)": 3, "inbox INSERT + COMMIT (web)": 5,
                             "HTTP: gunicorn + Flask/werkzeug": 2}
