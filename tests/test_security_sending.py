"""Sending once (issue 13, item 11): a time-out is not a failure. A send whose
outcome is unknown is re-sent only where the platform drops duplicates
(WeCom's duplicate check); otherwise it is held as `unknown` and staff are
told, so an owner never gets a message twice and no reply vanishes unseen."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.conftest import ROOT
from tests.outbound_helpers import add_push, mp_text, row, rows, wecom_text

SEND = "/cgi-bin/message/send"
CUSTOM = "/cgi-bin/message/custom/send"


def _deliveries(fake, path: str, content: str, settle_s: float = 3.0) -> list[dict]:
    """What reached the platform with this content, after late answers have landed."""
    time.sleep(settle_s)
    return [e for e in fake.delivered(path) if content in str(e.get("json"))]


def test_slow_official_account_gets_the_message_once_and_staff_are_told(outbound_env, fake_platform, demo):
    from bot.outbound.sender import send_one
    from bot.sweeper import sweep

    fake_platform.fault(CUSTOM, delay_s=2.5)  # the platform answers after our 1 s time-out
    oid = add_push(mp_text("o_li", "您的报修T12已受理，师傅马上到"))
    assert send_one(oid) == "unknown"
    r = row(oid)
    assert r.state == "unknown" and "outcome unknown" in r.last_error and r.attempts == 1
    # Nothing sends it again: not a second call, not the sweeper.
    assert send_one(oid) == "already unknown"
    sweep()
    from tests.platform import drain_queues

    drain_queues(["outbound"])
    assert len(_deliveries(fake_platform, CUSTOM, "师傅马上到")) == 1
    # ...and a person knows, with what it said and to whom.
    [report] = [x for x in rows(source="outbox-report") if x.dedup_key == f"report:unknown:{oid}"]
    text = report.payload["content"]
    assert "可能未送达" in text and "师傅马上到" in text and "李秀英" in text and "o_li" not in text
    assert report.recipient == "zhuguan_chen|jingli_lin"


def test_slow_wecom_is_retried_and_delivered_once(outbound_env, fake_platform):
    from bot.outbound.sender import send_one

    fake_platform.fault(SEND, delay_s=2.5)
    oid = add_push(wecom_text("kefu_xiaomei", "新工单T12请接单"))
    assert send_one(oid) == "retry"
    assert "outcome unknown, retried safely" in row(oid).last_error
    time.sleep(0.5)
    assert send_one(oid) == "sent"
    assert len(_deliveries(fake_platform, SEND, "新工单T12请接单")) == 1  # WeCom dropped its duplicate
    assert rows(source="outbox-report") == []


def test_a_connection_refused_is_not_an_unknown_outcome(outbound_env, fake_platform, monkeypatch):
    """Nothing left our side: an ordinary retry, no report."""
    from ground.config import reset_settings
    from bot.outbound.clients import reset_clients
    from bot.outbound.sender import send_one
    from tests.conftest import free_port

    monkeypatch.setenv("WECHAT_API_BASE", f"http://127.0.0.1:{free_port()}")
    reset_settings()
    reset_clients()
    oid = add_push(mp_text("o_li", "连接失败"))
    assert send_one(oid) == "retry"
    assert row(oid).state == "failed"


def _send_in_a_worker_and_kill_it(oid: int, path: str, fake) -> None:
    """A real process sends the row; it is killed while the platform has not answered."""
    proc = subprocess.Popen([sys.executable, "-c", f"from bot.outbound.sender import send_one; send_one({oid})"],
                            cwd=str(ROOT), env={**os.environ, "GUANJIA_OUTBOX_LEASE_S": "1",
                                                "GUANJIA_HTTP_TIMEOUT_S": "20"})
    deadline = time.time() + 30
    while not (row(oid).last_error or "").startswith("in flight") and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the request is at the platform, which answers in 3 s
    proc.kill()
    proc.wait(10)
    time.sleep(1.2)  # the dead worker's lease runs out


def test_worker_killed_mid_send_official_account_is_held_not_repeated(outbound_env, fake_platform, demo):
    from bot.outbound.sender import send_one

    fake_platform.fault(CUSTOM, delay_s=3)
    oid = add_push(mp_text("o_wang", "王先生，您的工单已完成"))
    _send_in_a_worker_and_kill_it(oid, CUSTOM, fake_platform)
    assert send_one(oid) == "unknown"
    assert "stopped mid-call" in row(oid).last_error
    assert len(_deliveries(fake_platform, CUSTOM, "您的工单已完成")) == 1
    assert [x for x in rows(source="outbox-report") if x.dedup_key == f"report:unknown:{oid}"]


def test_worker_killed_mid_send_wecom_is_resent_safely(outbound_env, fake_platform):
    from bot.outbound.sender import send_one

    fake_platform.fault(SEND, delay_s=3)
    oid = add_push(wecom_text("weixiu_laozhou", "T15 楼道漏水请处理"))
    _send_in_a_worker_and_kill_it(oid, SEND, fake_platform)
    assert send_one(oid) == "sent"
    assert len(_deliveries(fake_platform, SEND, "T15 楼道漏水请处理")) == 1
