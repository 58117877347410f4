"""inbox: claimed_at, the claim lease (a dead worker's message is re-queued within 30 s)

Revision ID: 0012
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import store.types


revision = '0012'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('inbox', sa.Column('claimed_at', store.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inbox') as batch:
        batch.drop_column('claimed_at')
