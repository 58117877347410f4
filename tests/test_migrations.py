"""The migrations run both ways: `downgrade base` takes every table away and upgrading
again builds the very same schema (tests/test_clock_migration.py covers 0014's rows)."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from store.migrate import alembic_config, upgrade


def _schema(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")))


def test_downgrade_base_removes_every_table_and_upgrade_builds_the_same_schema_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = sa.create_engine(url)
    built = _schema(engine)
    assert {"owners", "inbox", "tickets", "bookings", "mod_cases", "campaigns", "console_sessions",
            "consultations", "clocks"} <= set(sa.inspect(engine).get_table_names())
    command.downgrade(alembic_config(url), "base")
    assert sa.inspect(engine).get_table_names() == ["alembic_version"]
    upgrade(url)
    assert _schema(engine) == built
    engine.dispose()
