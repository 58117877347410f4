"""tickets: complaints and repairs, their events and clocks"""
from store.migration_kit import created_at, create_table, drop_tables, integer, json, moment, string, text

revision = '0004'
down_revision = '0001'


def upgrade() -> None:
    create_table('tickets',
                 string('kind', 16), string('priority', 16), string('category', 32), string('team', 32),
                 text('content'), string('state', 16), string('channel', 16), string('sender', 64),
                 integer('owner_id', null=True), string('room', 32, null=True), string('building', 32, null=True),
                 string('contact_name', 64, null=True), string('contact_phone', 32, null=True),
                 string('assignee', 64, null=True), integer('version'), json('notified'),
                 moment('accepted_at', null=True), moment('on_site_at', null=True),
                 moment('completed_at', null=True), moment('result_sent_at', null=True),
                 moment('called_back_at', null=True), moment('closed_at', null=True), text('result_note', null=True),
                 integer('survey_score', null=True), text('survey_comment', null=True), integer('reopen_count'),
                 integer('nudges'), created_at(),
                 refs={'owner_id': 'owners'}, indexes={'ix_tickets_state': ['state']})
    create_table('ticket_events',
                 integer('ticket_id'), moment('at'), string('actor', 64), string('action', 32), json('detail'),
                 refs={'ticket_id': 'tickets'}, indexes={'ix_ticket_events_ticket': ['ticket_id', 'at']})
    # Unused since 0014 (`clocks` holds every clock); kept so 0014's downgrade can refill it.
    create_table('ticket_clocks',
                 integer('ticket_id'), string('clock', 32), string('rule', 8), integer('round'),
                 moment('started_at'), moment('due_at'), moment('warn_at', null=True), moment('warned_at', null=True),
                 string('state', 16), moment('breached_at', null=True), moment('stopped_at', null=True),
                 integer('level'), moment('next_step_at', null=True),
                 refs={'ticket_id': 'tickets'}, indexes={'ix_ticket_clocks_state_due': ['state', 'due_at']})


def downgrade() -> None:
    drop_tables('ticket_clocks', 'ticket_events', 'tickets')
