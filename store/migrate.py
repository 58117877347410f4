"""Alembic driven from code: `guanjia db upgrade` and the test fixtures.

Each capability adds its own migration branching from the foundation, so the
target is always `heads`.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

HERE = Path(__file__).resolve().parent / "migrations"
FOUNDATION = "0001"


class MigrationError(RuntimeError):
    """A migration that cannot be written as asked; the message says what to pass."""


def alembic_config(url: str, location: Path = HERE) -> Config:
    cfg = Config(str(HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(location))
    cfg.set_main_option("version_locations", str(location / "versions"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, target: str = "heads", location: Path = HERE) -> None:
    command.upgrade(alembic_config(url, location), target)


def heads(location: Path = HERE) -> list[str]:
    """The revisions nothing follows yet (one per capability branch), sorted."""
    return sorted(ScriptDirectory.from_config(alembic_config("sqlite://", location)).get_heads())


def revision(url: str, message: str, head: str | None = None, rev_id: str | None = None,
             location: Path = HERE) -> None:
    """Autogenerate a migration that follows `head`: by default the one current head;
    with several (the capabilities' branches), say which, or FOUNDATION for a new
    capability's own branch (DEV_NOTES, Store: `down_revision = "0001"`)."""
    current = heads(location)
    if head is None:
        if len(current) != 1:
            raise MigrationError(
                f"the migrations have {len(current)} heads ({', '.join(current)}): pass head= the one the new "
                f"migration follows, or head={FOUNDATION!r} to branch a new capability from the foundation")
        head = current[0]
    # Following a revision that is not a head starts a branch: alembic calls that a splice.
    command.revision(alembic_config(url, location), message=message, autogenerate=True, head=head,
                     rev_id=rev_id, splice=head not in current)
