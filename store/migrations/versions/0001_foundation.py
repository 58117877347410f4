"""foundation: the community (buildings, homes, owners, staff, groups), the inbox and outbox,
conversations and the audit log"""
from store.migration_kit import (created_at, create_table, day, drop_tables, flag, integer, json, moment,
                                 string, text)

revision = '0001'
down_revision = None


def upgrade() -> None:
    create_table('audit_log',
                 string('actor', 64), string('action', 64), string('target', 128, null=True),
                 json('detail', null=True), created_at())
    create_table('buildings', string('code', 32), string('name', 64), unique=['code'])
    create_table('conversations',
                 string('sender', 64), string('chat', 64), string('handler', 32), json('state'),
                 moment('expires_at'),
                 unique=[('sender', 'chat')])
    create_table('inbox',
                 string('channel', 16), string('dedup_key', 128), string('sender', 64), string('kind', 32),
                 json('payload'), string('state', 16), integer('attempts'), moment('queued_at', null=True),
                 moment('handled_at', null=True), string('reply_mode', 16, null=True), json('replies', null=True),
                 text('error', null=True), created_at(),
                 unique=[('channel', 'dedup_key')], indexes={'ix_inbox_state_created': ['state', 'created_at']})
    create_table('outbox',
                 string('channel', 16), string('kind', 32), string('recipient', 128), json('payload'),
                 string('dedup_key', 128, null=True), string('state', 16), integer('attempts'),
                 moment('next_attempt_at', null=True), moment('sent_at', null=True), text('last_error', null=True),
                 integer('priority'), string('source', 64, null=True), created_at(),
                 unique=['dedup_key'], indexes={'ix_outbox_state_next': ['state', 'next_attempt_at']})
    create_table('staff',
                 string('userid', 64), string('name', 64), string('team', 32), string('role', 16),
                 string('phone', 32, null=True), flag('active'), created_at(),
                 unique=['userid'])
    create_table('groups',
                 string('chat_id', 64), string('name', 64), string('kind', 16), integer('building_id', null=True),
                 integer('staff_admin_id', null=True), created_at(),
                 refs={'building_id': 'buildings', 'staff_admin_id': 'staff'}, unique=['chat_id'])
    create_table('homes',
                 integer('building_id'), string('room', 32), day('handover_date', null=True),
                 day('warranty_until', null=True),
                 refs={'building_id': 'buildings'}, unique=['room'])
    create_table('owners',
                 string('name', 64), string('phone', 32, null=True), integer('home_id', null=True),
                 string('openid', 64, null=True), string('external_userid', 64, null=True), string('tier', 16),
                 day('tier_since', null=True), day('move_in_date', null=True), day('birthday', null=True),
                 day('fees_paid_until', null=True), moment('last_inbound_at', null=True), created_at(),
                 refs={'home_id': 'homes'}, unique=['external_userid', 'openid'])
    create_table('group_members',
                 integer('group_id'), string('member_id', 64), integer('owner_id', null=True), string('role', 16),
                 string('state', 16), created_at(),
                 refs={'group_id': 'groups', 'owner_id': 'owners'}, unique=[('group_id', 'member_id')])


def downgrade() -> None:
    drop_tables('group_members', 'owners', 'homes', 'groups', 'staff', 'outbox', 'inbox', 'conversations',
                'buildings', 'audit_log')
