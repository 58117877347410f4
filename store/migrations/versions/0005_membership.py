"""membership: spend ledger, tiers, applications, sanctions, bookings, capacity, quota, clocks"""
from store.migration_kit import (created_at, create_table, day, drop_tables, integer, json, moment, number,
                                 string, text)

revision = '0005'
down_revision = '0001'

OWNER = {'owner_id': 'owners'}


def upgrade() -> None:
    create_table('service_capacity',
                 string('service', 32), day('day'), integer('capacity'), integer('used'),
                 checks={'within': 'used <= capacity'}, unique=[('service', 'day')])
    create_table('bookings',
                 integer('owner_id'), string('service', 32), day('day'), moment('start_at'), moment('end_at'),
                 string('when_text', 64, null=True), string('location', 128), string('tier', 16),
                 integer('price_fen', null=True), number('discount'), string('quota_key', 32, null=True),
                 string('team', 32), string('state', 16), string('reviewed_by', 64, null=True),
                 moment('approved_at', null=True), moment('contacted_at', null=True), moment('done_at', null=True),
                 moment('cancelled_at', null=True), integer('rating', null=True), created_at(),
                 refs=OWNER, indexes={'ix_bookings_owner_state': ['owner_id', 'state']})
    create_table('member_applications',
                 integer('owner_id'), string('from_tier', 16), string('target_tier', 16), string('basis', 32),
                 string('state', 16), string('reviewed_by', 64, null=True), moment('reviewed_at', null=True),
                 text('note', null=True), created_at(),
                 refs=OWNER, indexes={'ix_member_applications_owner_id': ['owner_id']})
    create_table('member_downgrade_notices',
                 integer('owner_id'), string('from_tier', 16), string('to_tier', 16), integer('spend_fen'),
                 day('due_on'), string('state', 16), moment('closed_at', null=True), created_at(),
                 refs=OWNER, indexes={'ix_member_downgrade_notices_owner_id': ['owner_id']})
    create_table('member_quota_usage',
                 integer('owner_id'), string('service', 32), string('period', 16), integer('allowed'),
                 integer('used'),
                 checks={'within': 'used <= allowed'}, refs=OWNER, unique=[('owner_id', 'service', 'period')])
    create_table('member_sanctions',
                 integer('owner_id'), string('action', 16), text('reason'), string('actor', 64), moment('starts_at'),
                 moment('ends_at', null=True), moment('lifted_at', null=True), created_at(),
                 refs=OWNER, indexes={'ix_member_sanctions_owner_id': ['owner_id']})
    create_table('member_spend',
                 integer('owner_id'), integer('amount_fen'), day('spent_on'), string('category', 32),
                 string('note', 128, null=True), string('entered_by', 64, null=True), created_at(),
                 refs=OWNER, indexes={'ix_member_spend_owner_day': ['owner_id', 'spent_on']})
    create_table('member_tier_history',
                 integer('owner_id'), string('from_tier', 16), string('to_tier', 16), string('basis', 32),
                 text('reason', null=True), string('actor', 64), day('effective_on'), created_at(),
                 refs=OWNER, indexes={'ix_member_tier_history_owner_id': ['owner_id']})
    # Unused since 0014 (`clocks` holds every clock); kept so 0014's downgrade can refill it.
    create_table('service_clocks',
                 string('subject', 64), string('clock', 32), integer('owner_id', null=True),
                 string('team', 32, null=True), string('assignee', 256, null=True), moment('started_at'),
                 moment('due_at'), moment('stopped_at', null=True), string('state', 16),
                 moment('breached_at', null=True), integer('level'), json('detail', null=True), created_at(),
                 refs=OWNER, unique=[('subject', 'clock')],
                 indexes={'ix_service_clocks_state_due': ['state', 'due_at']})


def downgrade() -> None:
    drop_tables('service_clocks', 'member_tier_history', 'member_spend', 'member_sanctions', 'member_quota_usage',
                'member_downgrade_notices', 'member_applications', 'bookings', 'service_capacity')
