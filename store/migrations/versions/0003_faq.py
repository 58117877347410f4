"""faq: unanswered questions

Revision ID: 0003
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import store.types


revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('faq_misses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('normalized', sa.String(length=500), nullable=False),
    sa.Column('chat', sa.String(length=16), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('best_id', sa.String(length=64), nullable=True),
    sa.Column('best_score', sa.Float(), nullable=False),
    sa.Column('candidates', sa.JSON(), nullable=True),
    sa.Column('resolved', sa.Boolean(), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_faq_misses'))
    )
    op.create_index('ix_faq_misses_created', 'faq_misses', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_faq_misses_created', table_name='faq_misses')
    op.drop_table('faq_misses')
