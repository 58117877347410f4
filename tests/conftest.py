"""Shared fixtures: a real redis-server, a fresh migrated database per test, a
controlled clock, the demo community, and (in test modules that ask) the
fake platform over real HTTP.

Capability tests use these; nothing here mocks the project's own code.
"""
from __future__ import annotations

import fcntl
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


# The models' caches (faq index, KB and training vectors, intent and moderation models,
# the embedding model's parsed weights) of the project's own var dir, built once: a
# cold worker warm-up trains for ~20 s of CPU, a warm one loads in ~2 s. Every test's
# var dir (and every process a test starts with it) reads these through symlinks, one
# per entry: what a test writes there lands in its own directory, never here.
SHARED_CACHE = Path(os.environ.get("GUANJIA_VAR_DIR") or ROOT / "var") / "cache"


@functools.cache
def warm_shared_cache() -> Path:
    """Runs the worker's warm-up once per test process in a child process (the test
    process's own models stay unloaded until a test loads them), under a file lock so
    parallel test processes train once between them."""
    SHARED_CACHE.mkdir(parents=True, exist_ok=True)
    with open(SHARED_CACHE.parent / ".test-cache.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("GUANJIA_", "DATABASE_URL"))}
        child_env |= {"GUANJIA_VAR_DIR": str(SHARED_CACHE.parent), "OMP_NUM_THREADS": "1"}
        # Two children side by side, one per core: the worker's whole warm-up, and the intent
        # model first (which the warm-up reaches after retrieval's half minute; it then waits on
        # the model's build lock and reads it, faq/pickle_cache.py): ~40 s less on a cold cache.
        jobs = [subprocess.Popen([sys.executable, "-c", code], cwd=str(ROOT), env=child_env, text=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for code in ("from bot.worker import warm_up; warm_up()",
                             "from bot.ports import install; install(); from faq import intent_model; intent_model.warm_up()")]
        for job in jobs:
            _, err = job.communicate(timeout=600)
            if job.returncode != 0:  # a broken warm-up is for the tests to show, not the fixture
                sys.stderr.write(f"tests: model cache warm-up failed:\n{err[-3000:]}\n")
    return SHARED_CACHE


def seed_var_dir(var_dir: Path) -> Path:
    """`var_dir/cache` holding links to the warm shared cache's entries."""
    shared = warm_shared_cache()
    cache = var_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    for entry in shared.iterdir():
        if not entry.name.endswith((".tmp", ".lock")) and not (cache / entry.name).exists():
            (cache / entry.name).symlink_to(entry)
    return var_dir


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


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    """Groups for `pytest -n 2 --dist loadgroup` (scripts/test.sh), given here so that new
    tests fall into them without a marker:
    - the multi-process tests (`slow`) run one after another on one worker: each keeps
      its processes busy and times what they do, and two at once on a 2-core machine
      would measure each other;
    - a module whose tests share a module-scoped fixture (a browser, a live app, a
      trained model) runs on one worker, which sets the fixture up once.
    Without xdist the marks are inert."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("processes"))
            continue
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        if any(d and d[-1].scope == "module" for d in defs.values()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__.rsplit(".", 1)[-1]))


def pytest_collection_finish(session) -> None:
    # A long run will load the models: warm their cache before the first test, so a
    # test that loads them in this process (from the project's var/cache) does not
    # train them at the same time as the warm-up does. A short run warms on demand (env).
    if len(session.items) >= 100 and not session.config.option.collectonly:
        warm_shared_cache()


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
    monkeypatch.setenv("GUANJIA_VAR_DIR", str(seed_var_dir(tmp_path / "var")))
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
