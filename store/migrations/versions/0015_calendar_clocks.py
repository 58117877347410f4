"""clocks.anchor: the date a calendar obligation counts from (O12 a warranty's end, O15 the
first day in arrears), so the engine's check finds the subjects that still need a clock
with one query (on the subject's unique index) instead of reading every running row each minute.

Revision ID: 0015
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('clocks', sa.Column('anchor', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.drop_column('anchor')
