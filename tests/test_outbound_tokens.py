"""access tokens: cached in Redis, one refresher across threads and processes,
a refused token replaced and the call retried once."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

from tests.conftest import ROOT
from tests.outbound_helpers import add_push, mp_text, row, wecom_text

SEND = "/cgi-bin/message/send"


def test_token_is_fetched_once_for_many_sends(outbound_env, fake_platform):
    from bot.outbound.sender import send_one

    ids = [add_push(wecom_text(f"staff{i}", f"m{i}")) for i in range(8)]
    ids += [add_push(mp_text(f"o_user{i}", f"m{i}")) for i in range(4)]
    assert all(send_one(i) == "sent" for i in ids)
    calls = fake_platform.stats()["calls"]
    assert calls["/cgi-bin/gettoken"] == 1
    assert calls["/cgi-bin/stable_token"] == 1  # OA uses stable_token by default
    assert "/cgi-bin/token" not in calls


def test_refused_token_is_refreshed_and_call_retried_once(outbound_env, fake_platform):
    from bot.outbound.sender import send_one

    fake_platform.fault(SEND, errcode=40001, times=1)
    oid = add_push(wecom_text("kefu_xiaomei"))
    assert send_one(oid) == "sent"
    stats = fake_platform.stats()
    assert stats["calls"][SEND] == 2 and stats["calls"]["/cgi-bin/gettoken"] == 2
    assert row(oid).attempts == 1

    # A real expiry (the fake answers 42001 itself), then the refresh.
    fake_platform.expire_tokens()
    oid = add_push(wecom_text("kefu_xiaomei", "second"))
    assert send_one(oid) == "sent"
    assert fake_platform.stats()["errors"][f"{SEND}:42001"] == 1

    # Refused twice in a row: only one retry, then a normal back-off.
    fake_platform.fault(SEND, errcode=40014, times=2)
    oid = add_push(wecom_text("kefu_xiaomei", "third"))
    assert send_one(oid) == "retry"
    assert "40014" in row(oid).last_error


def test_oa_token_mode_rotation_after_overlap(outbound_env, fake_platform, monkeypatch):
    """/cgi-bin/token mode: a token fetched elsewhere knocks ours out after the overlap;
    the 40001 that follows refreshes it."""
    import requests

    from bot.outbound.clients import get_wechat_client, reset_clients
    from bot.outbound.sender import send_one

    monkeypatch.setenv("GUANJIA_WECHAT_TOKEN_MODE", "token")
    reset_clients()
    fake_platform.config(token_overlap_s=0)
    assert send_one(add_push(mp_text("o_li", "one"))) == "sent"
    # Someone else (another deployment) fetches a token: ours is invalid at once.
    requests.get(fake_platform.base_url + "/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": "wxfake0000000001", "secret": "fake-mp-secret"}, timeout=5)
    assert send_one(add_push(mp_text("o_li", "two"))) == "sent"
    stats = fake_platform.stats()
    assert stats["errors"]["/cgi-bin/message/custom/send:40001"] == 1
    assert stats["calls"]["/cgi-bin/token"] == 3
    assert get_wechat_client().token_mode == "token"


def test_stable_token_force_refresh_when_platform_returns_the_refused_one(outbound_env, fake_platform):
    """stable_token normal mode hands back the same token: after a 40001 on it, force a new one."""
    from bot.outbound.clients import get_wechat_client

    client = get_wechat_client()
    tok = client.tokens.get()
    fake_platform.fault("/cgi-bin/message/custom/send", errcode=40001, times=1)
    client.send_text("o_li", "hi")
    new = client.tokens.get()
    assert new != tok
    assert all(e["path"] != "/cgi-bin/stable_token" for e in fake_platform.sent())  # secrets stay out of /_sent
    assert fake_platform.stats()["calls"]["/cgi-bin/stable_token"] == 3  # first, normal (same), forced


def test_concurrent_refresh_in_threads_makes_one_token_call(outbound_env, fake_platform):
    from bot.outbound.clients import get_wecom_client

    fake_platform.fault("/cgi-bin/gettoken", delay_s=0.5)  # a slow platform widens the race
    client = get_wecom_client()
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(client.tokens.get())) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(tokens) == 10 and len(set(tokens)) == 1
    assert fake_platform.stats()["calls"]["/cgi-bin/gettoken"] == 1


def test_concurrent_refresh_in_processes_makes_one_token_call(outbound_env, fake_platform):
    fake_platform.fault("/cgi-bin/gettoken", delay_s=0.7)
    code = ("import time, sys; from bot.outbound.clients import get_wecom_client as g; "
            "c = g(); t0 = float(sys.argv[1]); time.sleep(max(0, t0 - time.time())); print(c.tokens.get())")
    import time

    start_at = str(time.time() + 1.5)  # all processes ask at the same moment
    env = {**os.environ}
    procs = [subprocess.Popen([sys.executable, "-c", code, start_at], cwd=str(ROOT), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err.decode()
        outs.append(out.decode().strip())
    assert len(set(outs)) == 1 and outs[0]
    assert fake_platform.stats()["calls"]["/cgi-bin/gettoken"] == 1


def test_redis_down_still_sends_with_a_process_token(outbound_env, fake_platform, redis_server):
    from bot.outbound.clients import get_wecom_client

    client = get_wecom_client()
    redis_server.stop()
    try:
        client.send_text("kefu_ajie", "Redis 停了也能发")
        client.send_text("kefu_ajie", "第二条")
    finally:
        redis_server.start()
    assert fake_platform.stats()["calls"]["/cgi-bin/gettoken"] == 1
    assert len(fake_platform.sent(SEND)) == 2


def test_refused_token_fetch_fails_fast_and_is_retried_later(outbound_env, fake_platform):
    from bot.outbound.sender import send_one

    fake_platform.config(credentials={"wwfake0000000001": "another-secret"})  # our secret is now wrong
    ids = [add_push(wecom_text(f"staff{i}")) for i in range(5)]
    assert [send_one(i) for i in ids] == ["retry"] * 5
    assert fake_platform.stats()["calls"]["/cgi-bin/gettoken"] == 1  # the others did not ask again
    assert "40001" in row(ids[0]).last_error and "refused recently" in row(ids[1]).last_error
