"""tickets: complaints and repairs, their events and clocks

Revision ID: 0004
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import store.types


revision = '0004'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('team', sa.String(length=32), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('room', sa.String(length=32), nullable=True),
    sa.Column('building', sa.String(length=32), nullable=True),
    sa.Column('contact_name', sa.String(length=64), nullable=True),
    sa.Column('contact_phone', sa.String(length=32), nullable=True),
    sa.Column('assignee', sa.String(length=64), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('notified', sa.JSON(), nullable=False),
    sa.Column('accepted_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('on_site_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('completed_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('result_sent_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('called_back_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('closed_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('result_note', sa.Text(), nullable=True),
    sa.Column('survey_score', sa.Integer(), nullable=True),
    sa.Column('survey_comment', sa.Text(), nullable=True),
    sa.Column('reopen_count', sa.Integer(), nullable=False),
    sa.Column('nudges', sa.Integer(), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['owners.id'], name=op.f('fk_tickets_owner_id_owners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tickets'))
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_state', ['state'], unique=False)

    op.create_table('ticket_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('at', store.types.UTCDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_events_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_events'))
    )
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_events_ticket', ['ticket_id', 'at'], unique=False)

    op.create_table('ticket_clocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('clock', sa.String(length=32), nullable=False),
    sa.Column('rule', sa.String(length=8), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('started_at', store.types.UTCDateTime(), nullable=False),
    sa.Column('due_at', store.types.UTCDateTime(), nullable=False),
    sa.Column('warn_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('warned_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('breached_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('stopped_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('next_step_at', store.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_clocks_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_clocks'))
    )
    with op.batch_alter_table('ticket_clocks', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_clocks_state_due', ['state', 'due_at'], unique=False)


def downgrade() -> None:
    op.drop_table('ticket_clocks')
    op.drop_table('ticket_events')
    op.drop_table('tickets')
