"""Alembic driven from code: `guanjia db upgrade` and the test fixtures.

Each capability adds its own migration branching from the foundation, so the
target is always `heads`.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config(str(HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("version_locations", str(HERE / "versions"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, target: str = "heads") -> None:
    command.upgrade(alembic_config(url), target)


def revision(url: str, message: str, head: str = "0001@head", rev_id: str | None = None) -> None:
    command.revision(alembic_config(url), message=message, autogenerate=True, head=head, rev_id=rev_id)
