"""The suite against PostgreSQL: GUANJIA_TEST_DATABASE_URL=postgresql+psycopg://...
or DATABASE_URL pointing at a PostgreSQL database that is safe to wipe.

The first test of a run empties the database's public schema and runs every
migration (so the migrations themselves are tested on PostgreSQL); every later
test starts from emptied tables (TRUNCATE ... RESTART IDENTITY), which is much
faster than migrating again. The database must be one you can throw away.
"""
from __future__ import annotations

import os

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

_migrated: set[str] = set()
# Left in a database the suite has taken over, so the next run knows it may wipe it again.
MARKER_TABLE = "guanjia_test_marker"


class UnsafeDatabase(Exception):
    pass


def database_url_for_tests() -> str | None:
    """The PostgreSQL database the suite runs against, or None for SQLite.

    GUANJIA_TEST_DATABASE_URL is taken as given. DATABASE_URL (the production variable)
    is taken only when wiping it cannot destroy anything: the database is empty, its
    name contains "test", or an earlier run of the suite marked it as its own. Anything
    else raises UnsafeDatabase, naming the database, rather than wipe an owner's data."""
    explicit = os.environ.get("GUANJIA_TEST_DATABASE_URL")
    if explicit:
        return explicit
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        return None
    name = make_url(url).database or ""
    if "test" in name.lower():
        return url
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    if not tables or MARKER_TABLE in tables:
        return url
    raise UnsafeDatabase(
        f"DATABASE_URL points at PostgreSQL database {name!r}, which has tables ({len(tables)}) the test "
        f"suite did not create. The tests wipe the database they run on, so they refuse this one. Use an "
        f"empty database, one whose name contains 'test', or set GUANJIA_TEST_DATABASE_URL.")


def fresh_postgres(url: str) -> str:
    """Return `url` with a migrated, empty schema behind it."""
    if not url.startswith("postgresql"):
        raise ValueError(f"the test database must be a postgresql:// URL, got {url!r}")
    engine = create_engine(url)
    try:
        if url not in _migrated:
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            from store.migrate import upgrade

            upgrade(url)
            with engine.begin() as conn:
                conn.execute(text(f"CREATE TABLE {MARKER_TABLE} (note text)"))
            _migrated.add(url)
            return url
        tables = [t for t in inspect(engine).get_table_names() if t not in ("alembic_version", MARKER_TABLE)]
        if tables:
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        return url
    finally:
        engine.dispose()
