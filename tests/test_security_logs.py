"""What leaks into logs (issue 13, item 9): database errors without their SQL
parameters, access-log lines without openids or search terms."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from tests import platform as P


def test_database_errors_do_not_carry_openids_or_message_text(env, caplog):
    from store.db import session_scope
    from store.models import InboxMessage, Owner

    with session_scope() as s:
        s.add(Owner(name="甲", openid="o_secret_openid_1"))
    with pytest.raises(IntegrityError) as err:
        with session_scope() as s:
            s.add(Owner(name="乙", openid="o_secret_openid_1", phone="13912345678"))
    text = str(err.value)
    assert "o_secret_openid_1" not in text and "13912345678" not in text
    assert "hidden due to hide_parameters" in text
    with pytest.raises(Exception) as err:
        with session_scope() as s:
            s.execute(insert(InboxMessage.__table__).values(channel="mp", dedup_key=None, sender="o_secret_2",
                                                             kind="text", payload={"text": "我家门锁密码是1234"}))
    assert "o_secret_2" not in str(err.value) and "门锁密码" not in str(err.value)


def _gunicorn_line(path: str, query: str) -> str:
    from datetime import timedelta

    from gunicorn.config import Config

    from bot.logs import MaskingGunicornLogger

    cfg = Config()
    cfg.set("accesslog", "-")
    logger = MaskingGunicornLogger(cfg)
    raw = path + ("?" + query if query else "")
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": raw, "PATH_INFO": path, "QUERY_STRING": query,
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.9", "HTTP_REFERER": "https://x/console/owners?q=13800000002"}

    class Resp:
        status, sent, headers = "200 OK", 7, []

    atoms = logger.atoms(Resp(), type("Req", (), {"headers": []})(), environ, timedelta(seconds=0.01))
    return cfg.access_log_format % atoms


def test_gunicorn_access_log_masks_openids_and_searches():
    q, _ = P.mp_text_request("o6_AbCdEfGhIjKlMnOpQrStUvWx", "hi", 1)
    from urllib.parse import urlencode

    line = _gunicorn_line("/wechat/mp", urlencode(q))
    assert "o6_AbCdEfGhIjKlMnOpQrStUvWx" not in line and "openid=o6_***" in line
    assert "timestamp=" + q["timestamp"] in line  # what is not personal stays readable
    line = _gunicorn_line("/api/v1/owners", "q=%E6%9D%8E%E7%A7%80%E8%8B%B1&limit=5")
    assert "E6%9D%8E" not in line and "q=***" in line and "limit=5" in line
    line = _gunicorn_line("/console/owners", "q=13800000002")
    assert "13800000002" not in line


def test_dev_server_access_log_masks_too(caplog):
    from bot.logs import setup_logging

    setup_logging()
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        # werkzeug's request line: '%s - - [%s] "%s" %s %s' with the request line as an argument
        logging.getLogger("werkzeug").info('%s - - [%s] "%s" %s %s', "127.0.0.1", "now",
                                           "GET /console/owners?q=李秀英 HTTP/1.1", "200", "-")
    assert "李秀英" not in caplog.text and "q=***" in caplog.text


def test_webhook_logs_never_carry_the_message_body(app_client, caplog):
    with caplog.at_level(logging.DEBUG):
        q, body = P.mp_text_request("o_private_x", "我的手机号13912345678门牌密码9999", 9101)
        app_client.post("/wechat/mp", query_string=q, data=body)
        q, body = P.mp_text_request("o_private_x", "同一个", 9102, mode="plain")
        app_client.post("/wechat/mp", query_string=q, data=body)  # refused: plaintext
        P.drain_queues()
    assert "13912345678" not in caplog.text and "门牌密码" not in caplog.text


def test_any_module_logging_an_openid_or_number_is_masked(tmp_path):
    """In a real process with the project's logging set-up: whatever a module writes,
    owners' identities and mobile numbers leave masked (stderr is what operators keep)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("from bot.logs import setup_logging; setup_logging(); import logging; "
            "logging.getLogger('bot.outbound.sender').warning('outbox 7 (mp/text to %s) dead: %s', "
            "'oLVPpjqs9BhvzwPj5A-vTYAX3GLc', 'call 13912345678'); "
            "logging.getLogger('handlers.dispatch').info('event from %s', 'wmqPbZDAAAz8dP9dTtwzdGFRxdb5LqTA')")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "oLVPpjqs9BhvzwPj5A-vTYAX3GLc" not in out.stderr and "13912345678" not in out.stderr
    assert "wmqPbZDAAAz8dP9dTtwzdGFRxdb5LqTA" not in out.stderr
    assert "outbox 7" in out.stderr and "oLV***" in out.stderr and "139****5678" in out.stderr
