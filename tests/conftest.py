"""Shared fixtures: a real redis-server, a fresh migrated database per test, a
controlled clock, the demo community, and (in test modules that ask) the
fake platform over real HTTP.

Capability tests use these; nothing here mocks the project's own code.
"""
from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
# WeCom's published conformance vector (PLATFORM.md). shared/ is beside the checkout in CI;
# the copy in tests/data keeps the conformance tests running in a clone without it.
WECOM_VECTOR = next(p for p in (SHARED / "eval" / "wecom_vector.xml", ROOT / "tests" / "data" / "wecom_vector.xml")
                    if p.exists())
sys.path.insert(0, str(ROOT))

# Fixture plugins; the outbound one appears when its developer commits it.
pytest_plugins = [p for p in ("tests.fixtures_platform", "tests.fixtures_ingress")
                  if (ROOT / (p.replace(".", "/") + ".py")).exists()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


class RedisServer:
    """A real redis-server on a free loopback port, stoppable and restartable."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.exit("redis-server is not installed: run .ci/run or `apt-get install redis-server`", 2)
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    """Migrations run once; each test copies the file (fast and isolated)."""
    path = tmp_path_factory.mktemp("dbtemplate") / "template.db"
    from store.migrate import upgrade

    upgrade(f"sqlite:///{path}")
    return path


def _reset_singletons() -> None:
    from ground.config import reset_settings
    from bot.queues import reset_redis
    from store.db import reset_engine

    reset_settings()
    reset_engine()
    reset_redis()


@functools.cache
def _postgres_url() -> str | None:
    """Decided once per run (tests.pg.database_url_for_tests); an unsafe DATABASE_URL stops the run."""
    from tests.pg import UnsafeDatabase, database_url_for_tests

    try:
        return database_url_for_tests()
    except UnsafeDatabase as exc:
        pytest.exit(str(exc), returncode=2)


def pytest_sessionstart(session) -> None:
    _postgres_url()  # refuse an unsafe DATABASE_URL before any test runs


@pytest.fixture
def env(tmp_path, redis_server, migrated_template, monkeypatch):
    """A clean world for one test: its own database, an empty Redis, settings
    from the environment. Returns a dict of the values used."""
    pg = _postgres_url()
    if pg:  # the suite against PostgreSQL: tables are emptied between tests
        from tests.pg import fresh_postgres

        db_url = fresh_postgres(pg)
    else:
        db_path = tmp_path / "guanjia.db"
        shutil.copy(migrated_template, db_path)
        db_url = f"sqlite:///{db_path}"
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("GUANJIA_VAR_DIR", str(tmp_path / "var"))
    for name in ("WECHAT_APPID", "WECHAT_SECRET", "WECHAT_TOKEN", "WECHAT_AES_KEY", "WECOM_CORP_ID",
                 "WECOM_AGENT_ID", "WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY", "GUANJIA_FAKE_NOW"):
        monkeypatch.delenv(name, raising=False)
    _reset_singletons()
    from redis import Redis

    from bot import ports as edge_ports
    from ground import ports

    Redis.from_url(redis_server.url).flushall()
    before = ports.installed()
    edge_ports.install()  # as every process does at start (a test may then install a fake)
    yield {"database_url": db_url, "redis_url": redis_server.url, "tmp": tmp_path}
    ports.install(**{name: before.get(name) for name in ports.PORTS})
    _reset_singletons()


@pytest.fixture
def frozen_clock():
    """Business time under the test's control; starts on a Tuesday morning in Shanghai."""
    from ground import clock

    original = clock.get_clock()
    fc = clock.FrozenClock(datetime(2026, 9, 15, 9, 0, tzinfo=clock.CST))
    clock.set_clock(fc)
    yield fc
    clock.set_clock(original)


@pytest.fixture
def demo(env):
    from bot.demo import load_demo

    load_demo()
    return env


@pytest.fixture
def session(env):
    from store.db import session_scope

    with session_scope() as s:
        yield s
