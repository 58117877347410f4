"""Engine and sessions. One engine per process, created lazily from settings."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

_engine: Engine | None = None
_factory: sessionmaker | None = None


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """`pool_size`: connections kept open, at least the threads that use the database at
    once (a web process's gthread threads). Fewer means connections closed and reopened
    under load, each reopening paying the PRAGMAs below (or a PostgreSQL log-in).

    hide_parameters: a database error's message (logged with its traceback) would
    otherwise carry the statement's values: openids, owners' message text."""
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=pool_size, max_overflow=10, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # web, worker and scheduler share the file
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # no fsync per commit; safe on a crash, not a power cut (use PostgreSQL)
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=10, hide_parameters=True)


def get_engine() -> Engine:
    global _engine, _factory
    if _engine is None:
        from bot.config import get_settings

        settings = get_settings()
        _engine = make_engine(settings.database_url, pool_size=max(5, settings.web_threads))
        _factory = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def reset_engine() -> None:
    global _engine, _factory
    if _engine is not None:
        _engine.dispose()
    _engine, _factory = None, None


@contextmanager
def connection_scope() -> Iterator[Connection]:
    """A Core connection in a transaction, committed on success: for the few hot-path
    statements that need no ORM (the webhook's inbox insert), about 0.1 ms less than a
    Session."""
    with get_engine().begin() as conn:
        yield conn


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
