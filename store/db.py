"""Engine and sessions. One engine per process, created lazily from settings."""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ground.config import get_settings

log = logging.getLogger(__name__)
T = TypeVar("T")
# SQLite waits this long for another writer before "database is locked" (PRAGMA busy_timeout).
BUSY_TIMEOUT_MS = 30000

_engine: Engine | None = None
_factory: sessionmaker | None = None


def make_engine(url: str, pool_size: int = 5, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """`pool_size`: connections kept open, at least the threads that use the database at
    once (a web process's gthread threads). Fewer means connections closed and reopened
    under load, each reopening paying the PRAGMAs below (or a PostgreSQL log-in).
    `busy_timeout_ms`: how long a SQLite statement waits for another writer's lock.

    hide_parameters: a database error's message (logged with its traceback) would
    otherwise carry the statement's values: openids, owners' message text."""
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
                               pool_size=pool_size, max_overflow=10, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # web, worker and scheduler share the file
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # no fsync per commit; safe on a crash, not a power cut (use PostgreSQL)
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        event.listen(engine, "before_cursor_execute", _note_write)
        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=10, hide_parameters=True)
    event.listen(engine, "before_cursor_execute", _note_write)
    return engine


_READS = ("SELECT", "PRAGMA", "SHOW")


def _note_write(conn, _cursor, statement: str, _params, _context, _many) -> None:
    """Marks a connection that ran anything but a read (see `wrote`): well under a microsecond."""
    if not statement.lstrip()[:6].upper().startswith(_READS):
        conn.info["wrote"] = True


_engine_lock = threading.Lock()


def get_engine() -> Engine:
    global _engine, _factory
    if _engine is None:
        with _engine_lock:  # a web process's first requests arrive on many threads at once
            if _engine is None:
                settings = get_settings()
                engine = make_engine(settings.database_url, pool_size=max(5, settings.web_threads))
                _factory = sessionmaker(engine, expire_on_commit=False)
                _engine = engine
    return _engine


def reset_engine() -> None:
    global _engine, _factory
    if _engine is not None:
        _engine.dispose()
    _engine, _factory = None, None


@contextmanager
def connection_scope(busy_timeout_s: float | None = None) -> Iterator[Connection]:
    """A Core connection in a transaction, committed on success: for the few hot-path
    statements that need no ORM (the webhook's inbox insert), about 0.1 ms less than a
    Session.

    `busy_timeout_s`: wait at most this long for a lock held by another writer (the
    webhook must answer within the platform's 5 s, so it cannot wait the default 30 s)."""
    engine = get_engine()
    if busy_timeout_s is None:
        with engine.begin() as conn:
            yield conn
        return
    sqlite = engine.dialect.name == "sqlite"
    ms = max(1, int(busy_timeout_s * 1000))
    with engine.connect() as conn:
        # On the driver's connection, so SQLAlchemy's transaction state is untouched.
        raw = conn.connection.driver_connection if sqlite else None
        if raw is not None:
            raw.execute(f"PRAGMA busy_timeout={ms}")
        try:
            with conn.begin():
                if raw is None:
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
                yield conn
        finally:
            if raw is not None:  # the connection goes back to the pool: the usual wait again
                raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def is_busy(exc: BaseException) -> bool:
    """A lock held by another writer (SQLite "database is locked"/busy, a PostgreSQL
    lock timeout or serialization failure): passing, worth retrying."""
    if not isinstance(exc, OperationalError):
        return False
    text = str(exc.orig if getattr(exc, "orig", None) is not None else exc).lower()
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return "locked" in text or "busy" in text or code in ("55P03", "40001", "40P01")


def retry_busy(fn: Callable[[], T], budget_s: float, what: str, pause_s: float = 0.2) -> T:
    """Run `fn` (one whole transaction), again while the database is busy, for up to
    `budget_s` in all; the last busy error is raised after that."""
    deadline = time.monotonic() + budget_s
    tries = 0
    while True:
        try:
            return fn()
        except OperationalError as exc:
            tries += 1
            if not is_busy(exc) or time.monotonic() + pause_s >= deadline:
                raise
            log.warning("%s: database busy (try %d); retrying", what, tries)
            time.sleep(pause_s)
            pause_s = min(pause_s * 2, 5.0)


def new_session() -> Session:
    """A session the caller commits or rolls back and closes (see `wrote`)."""
    get_engine()
    session = _factory()
    session.connection().info["wrote"] = False
    return session


def wrote(session: Session) -> bool:
    """Whether the session has anything to commit: pending ORM changes, or any statement
    other than a read run in its transaction (flushes, Core UPDATEs on its connection).
    A read-only session's transaction can be rolled back instead of committed."""
    if session.new or session.dirty or session.deleted:
        return True
    return bool(session.connection().info.get("wrote"))


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session committed on success, rolled back on error."""
    get_engine()
    session = _factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
