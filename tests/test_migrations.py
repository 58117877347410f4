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


def test_a_new_revision_with_several_heads_says_which_heads_exist(tmp_path):
    """No head given while the capabilities' branches make several: a clear error naming
    them (alembic's "0001@head" used to fail with "multiple heads"), and no file written."""
    import pytest

    from store.migrate import HERE, MigrationError, heads, revision

    found = heads()
    assert len(found) > 1 and "0015" in found
    before = sorted(p.name for p in (HERE / "versions").iterdir())
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    with pytest.raises(MigrationError, match=r"heads \(0003, .*0015\): pass head= the one"):
        revision(url, "probe")
    assert sorted(p.name for p in (HERE / "versions").iterdir()) == before


def test_a_new_revision_follows_the_single_head(tmp_path):
    """With one head (a copy of the migrations holding the foundation and 0003), the new
    migration follows it; head="0001" branches from the foundation instead."""
    import re
    import shutil

    from store.migrate import HERE, heads, revision

    where = tmp_path / "migrations"
    shutil.copytree(HERE, where, ignore=shutil.ignore_patterns("__pycache__", "0*.py"))
    for name in ("0001_foundation.py", "0003_faq.py"):
        shutil.copy(HERE / "versions" / name, where / "versions" / name)
    assert heads(where) == ["0003"]
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, location=where)
    revision(url, "probe", rev_id="9001", location=where)
    written = next((where / "versions").glob("9001_*.py")).read_text()
    assert re.search(r"^down_revision = ['\"]0003['\"]$", written, re.M)
    assert heads(where) == ["9001"]
    upgrade(url, location=where)
    revision(url, "branch", rev_id="9002", head="0001", location=where)
    assert heads(where) == ["9001", "9002"]
