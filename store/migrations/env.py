from alembic import context

import store.models  # noqa: F401  (registers every table)
from store.db import make_engine
from store.models.base import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = make_engine(config.get_main_option("sqlalchemy.url"))
        try:
            with connectable.connect() as connection:
                _run(connection)
        finally:
            connectable.dispose()  # checkpoints SQLite's WAL so the file is complete on its own
    else:
        _run(connectable)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
