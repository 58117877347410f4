"""consultations: a person behind every handoff; photos, voice and locations on tickets"""
from store.migration_kit import (blob, created_at, create_table, drop_tables, integer, json, moment, number,
                                 string, text)

revision = '0010'
down_revision = '0004'


def upgrade() -> None:
    create_table('consultations',
                 integer('owner_id', null=True), string('sender', 64), string('channel', 16), string('state', 16),
                 string('title', 80), text('question'), string('topic', 32), string('recipients', 256, null=True),
                 string('holder', 64, null=True), moment('picked_at', null=True), integer('round'),
                 moment('last_owner_at', null=True), moment('last_reply_at', null=True),
                 moment('closed_at', null=True), string('closed_by', 64, null=True), created_at(),
                 refs={'owner_id': 'owners'},
                 indexes={'ix_consultations_state': ['state'], 'ix_consultations_sender': ['sender']})
    create_table('consultation_entries',
                 integer('consultation_id'), moment('at'), string('author_kind', 16), string('author', 64),
                 text('text'), json('detail'),
                 refs={'consultation_id': 'consultations'},
                 indexes={'ix_consultation_entries_case': ['consultation_id', 'at']})
    create_table('ticket_media',
                 integer('ticket_id'), string('kind', 16), string('channel', 16), string('sender', 64), moment('at'),
                 string('media_id', 128, null=True), string('pic_url', 512, null=True), string('state', 16),
                 string('content_type', 64, null=True), integer('size', null=True), blob('content', null=True),
                 text('error', null=True), number('latitude', null=True), number('longitude', null=True),
                 string('label', 256, null=True),
                 refs={'ticket_id': 'tickets'}, indexes={'ix_ticket_media_ticket': ['ticket_id']})


def downgrade() -> None:
    drop_tables('ticket_media', 'consultation_entries', 'consultations')
