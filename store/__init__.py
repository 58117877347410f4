"""Persistence: SQLAlchemy models, Alembic migrations, queries."""
