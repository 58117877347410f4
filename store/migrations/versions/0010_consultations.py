"""consultations: a person behind every handoff; photos, voice and locations on tickets

Revision ID: 0010
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa
import store.types


revision = '0010'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consultations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=80), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('topic', sa.String(length=32), nullable=False),
    sa.Column('recipients', sa.String(length=256), nullable=True),
    sa.Column('holder', sa.String(length=64), nullable=True),
    sa.Column('picked_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('last_owner_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('last_reply_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('closed_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('closed_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['owners.id'], name=op.f('fk_consultations_owner_id_owners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consultations'))
    )
    op.create_index('ix_consultations_state', 'consultations', ['state'], unique=False)
    op.create_index('ix_consultations_sender', 'consultations', ['sender'], unique=False)
    op.create_table('consultation_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consultation_id', sa.Integer(), nullable=False),
    sa.Column('at', store.types.UTCDateTime(), nullable=False),
    sa.Column('author_kind', sa.String(length=16), nullable=False),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultations.id'],
                            name=op.f('fk_consultation_entries_consultation_id_consultations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consultation_entries'))
    )
    op.create_index('ix_consultation_entries_case', 'consultation_entries', ['consultation_id', 'at'], unique=False)
    op.create_table('ticket_media',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('at', store.types.UTCDateTime(), nullable=False),
    sa.Column('media_id', sa.String(length=128), nullable=True),
    sa.Column('pic_url', sa.String(length=512), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('label', sa.String(length=256), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_media_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_media'))
    )
    op.create_index('ix_ticket_media_ticket', 'ticket_media', ['ticket_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_ticket_media_ticket', table_name='ticket_media')
    op.drop_table('ticket_media')
    op.drop_index('ix_consultation_entries_case', table_name='consultation_entries')
    op.drop_table('consultation_entries')
    op.drop_index('ix_consultations_sender', table_name='consultations')
    op.drop_index('ix_consultations_state', table_name='consultations')
    op.drop_table('consultations')
