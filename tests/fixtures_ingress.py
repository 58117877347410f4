"""Fixtures for the webhook side: `app_client` and `live_worker`.

Registered from tests/conftest.py (pytest_plugins). Request builders and
`drain_queues()` live in tests/platform.py.
"""
from __future__ import annotations

import threading
import time

import pytest

from tests import platform


@pytest.fixture
def app_client(env, request, monkeypatch):
    """Flask test client with both channels configured (test credentials of
    tests/platform.py), pointed at the fake platform when that fixture exists.

    The passive-reply budget is 0 s: the endpoint answers `success` at once and
    replies are pushed once `drain_queues()` runs the jobs, which keeps tests
    deterministic. Use `live_worker` (and a budget) to see passive replies.

    Every message goes through the worker lane here (GUANJIA_HANDLE_IN_WEB=0, the
    worker-only path, which the capabilities' tests drive with `drain_queues()`);
    tests/test_ingress_in_web.py covers plain texts handled in the web process, the
    deployed default (`in_web_client`).
    """
    try:
        base = request.getfixturevalue("fake_platform").base_url
    except pytest.FixtureLookupError:  # the outbound side is not there yet
        base = None
    for k, v in platform.channel_env(base).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("GUANJIA_PASSIVE_BUDGET_S", "0")
    monkeypatch.setenv("GUANJIA_HANDLE_IN_WEB", getattr(request, "param", None) or "0")
    from ground.config import reset_settings

    reset_settings()
    from bot.web import create_app

    app = create_app()
    app.testing = True
    with app.test_client() as client:
        yield client


@pytest.fixture
def in_web_client(env, request, monkeypatch):
    """`app_client` as deployed: plain texts handled in the web process (GUANJIA_HANDLE_IN_WEB=1),
    a passive budget of 3 s, the group commit on."""
    monkeypatch.setenv("GUANJIA_HANDLE_IN_WEB", "1")
    try:
        base = request.getfixturevalue("fake_platform").base_url
    except pytest.FixtureLookupError:
        base = None
    for k, v in platform.channel_env(base).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("GUANJIA_PASSIVE_BUDGET_S", "3")
    from ground.config import reset_settings

    reset_settings()
    from bot.web import create_app

    app = create_app()
    app.testing = True
    with app.test_client() as client:
        yield client


class LiveWorker:
    """Runs queued jobs in a background thread of this process, so a request
    made through the test client can get its passive reply."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="live-worker")
        self.errors: list[BaseException] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                platform.drain_queues(rounds=1)
            except BaseException as exc:  # keep the thread alive; the test looks at .errors
                self.errors.append(exc)
            time.sleep(0.01)

    def start(self) -> "LiveWorker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def live_worker(env):
    worker = LiveWorker().start()
    yield worker
    worker.stop()
