"""clocks.anchor: the date a calendar obligation counts from (O12 a warranty's end, O13 a
birthday, O15 the first day in arrears), so the engine's check tells a new round from a
running one and finds the subjects still without a clock in one query"""
from alembic import op

from store.migration_kit import day

revision = '0015'
down_revision = '0014'


def upgrade() -> None:
    op.add_column('clocks', day('anchor', null=True))


def downgrade() -> None:
    with op.batch_alter_table('clocks') as batch:
        batch.drop_column('anchor')
