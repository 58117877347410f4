"""The suite against PostgreSQL: GUANJIA_TEST_DATABASE_URL=postgresql+psycopg://...

The first test of a run empties the database's public schema and runs every
migration (so the migrations themselves are tested on PostgreSQL); every later
test starts from emptied tables (TRUNCATE ... RESTART IDENTITY), which is much
faster than migrating again. The database must be one you can throw away.
"""
from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

_migrated: set[str] = set()


def fresh_postgres(url: str) -> str:
    """Return `url` with a migrated, empty schema behind it."""
    if not url.startswith("postgresql"):
        raise ValueError(f"GUANJIA_TEST_DATABASE_URL must be a postgresql:// URL, got {url!r}")
    engine = create_engine(url)
    try:
        if url not in _migrated:
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            from store.migrate import upgrade

            upgrade(url)
            _migrated.add(url)
            return url
        tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
        if tables:
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        return url
    finally:
        engine.dispose()
