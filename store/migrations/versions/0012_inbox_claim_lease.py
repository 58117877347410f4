"""inbox: claimed_at, the claim lease (a dead worker's message is re-queued within 30 s)"""
from alembic import op

from store.migration_kit import moment

revision = '0012'
down_revision = '0001'


def upgrade() -> None:
    op.add_column('inbox', moment('claimed_at', null=True))


def downgrade() -> None:
    with op.batch_alter_table('inbox') as batch:
        batch.drop_column('claimed_at')
