"""The fake platform as a real subprocess, and settings that point the project at it.

    def test_x(outbound_env, fake_platform):
        ...send something...
        assert fake_platform.sent("/cgi-bin/message/send")[0]["json"]["touser"] == "zhangsan"
        fake_platform.fault("/cgi-bin/message/send", errcode=45009, times=2)

`fake_platform_server` is session-scoped (one process for the whole run);
`fake_platform` is the same object, reset (records, faults, tokens, stats,
config) before each test that uses it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, free_port, wait_port

MP_APPID, MP_SECRET = "wxfake0000000001", "fake-mp-secret"
CORP_ID, WECOM_SECRET, AGENT_ID = "wwfake0000000001", "fake-wecom-secret", "1000002"
# 43 characters of the base64 alphabet: a valid EncodingAESKey shape.
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
MP_TOKEN, WECOM_TOKEN = "mptoken", "wecomtoken"


class FakePlatform:
    """Handle on a running `guanjia dev fake-platform`."""

    def __init__(self, port: int, proc: subprocess.Popen | None = None) -> None:
        self.port = port
        self.proc = proc
        self.base_url = f"http://127.0.0.1:{port}"
        self.http = requests.Session()

    def _ok(self, resp: requests.Response) -> requests.Response:
        resp.raise_for_status()
        return resp

    def sent(self, path: str | None = None) -> list[dict]:
        """Accepted calls, oldest first ({path, time, query, json, ...}); optionally one path."""
        params = {"path": path} if path else None
        return self._ok(self.http.get(self.base_url + "/_sent", params=params, timeout=5)).json()

    def delivered(self, path: str | None = None) -> list[dict]:
        """Like sent(), without calls the platform accepted but dropped (duplicate, rate limit)."""
        return [e for e in self.sent(path) if not e.get("dropped")]

    def clear(self) -> None:
        self._ok(self.http.delete(self.base_url + "/_sent", timeout=5))

    def fault(self, path: str, errcode: int | None = None, status: int | None = None,
              delay_s: float | None = None, times: int = 1) -> None:
        body = {"path": path, "times": times}
        for key, value in (("errcode", errcode), ("status", status), ("delay_s", delay_s)):
            if value is not None:
                body[key] = value
        self._ok(self.http.post(self.base_url + "/_faults", json=body, timeout=5))

    def clear_faults(self) -> None:
        self._ok(self.http.delete(self.base_url + "/_faults", timeout=5))

    def stats(self) -> dict:
        return self._ok(self.http.get(self.base_url + "/_stats", timeout=5)).json()

    def config(self, **values) -> dict:
        """Change the fake's behaviour (see DEFAULT_CONFIG in bot/devtools/fake_platform.py)."""
        return self._ok(self.http.post(self.base_url + "/_config", json=values, timeout=5)).json()

    def expire_tokens(self) -> None:
        self._ok(self.http.post(self.base_url + "/_tokens/expire", timeout=5))

    def reset(self) -> None:
        self._ok(self.http.post(self.base_url + "/_reset", timeout=5))

    def wait_for(self, path: str, n: int = 1, timeout: float = 10.0) -> list[dict]:
        """Poll until at least n calls to path were recorded (for work done by other processes)."""
        deadline = time.time() + timeout
        while True:
            items = self.sent(path)
            if len(items) >= n or time.time() > deadline:
                return items
            time.sleep(0.05)


def start_fake_platform(port: int | None = None, log_path: Path | None = None) -> FakePlatform:
    port = port or free_port()
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "bot", "dev", "fake-platform", "--port", str(port)],
                            cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_port(port, timeout=20)
    except RuntimeError:
        proc.kill()
        raise
    return FakePlatform(port, proc)


@pytest.fixture(scope="session")
def fake_platform_server(tmp_path_factory):
    server = start_fake_platform(log_path=tmp_path_factory.mktemp("fakeplatform") / "fake_platform.log")
    yield server
    if server.proc and server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()


@pytest.fixture
def fake_platform(fake_platform_server) -> FakePlatform:
    """The session's fake platform, with a clean slate for this test."""
    fake_platform_server.reset()
    return fake_platform_server


@pytest.fixture
def outbound_env(env, fake_platform, monkeypatch):
    """Both channels configured against the fake platform, with short time-outs and
    back-offs so failure paths run in well under a second."""
    values = {
        "WECHAT_APPID": MP_APPID, "WECHAT_SECRET": MP_SECRET, "WECHAT_TOKEN": MP_TOKEN, "WECHAT_AES_KEY": AES_KEY,
        "WECOM_CORP_ID": CORP_ID, "WECOM_AGENT_ID": AGENT_ID, "WECOM_SECRET": WECOM_SECRET,
        "WECOM_TOKEN": WECOM_TOKEN, "WECOM_AES_KEY": AES_KEY,
        "WECHAT_API_BASE": fake_platform.base_url, "WECOM_API_BASE": fake_platform.base_url,
        "GUANJIA_HTTP_TIMEOUT_S": "1", "GUANJIA_OUTBOX_BACKOFF_S": "0.2", "GUANJIA_OUTBOX_BACKOFF_MAX_S": "2",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    from ground.config import reset_settings
    from bot.outbound.clients import reset_clients

    reset_settings()
    reset_clients()
    yield {**env, **values, "fake": fake_platform}
    reset_clients()
