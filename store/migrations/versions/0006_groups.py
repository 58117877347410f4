"""groups: moderation cases, admissions, archive cursor, suggestions, announcements"""
from store.migration_kit import (created_at, create_table, drop_tables, flag, integer, moment, string,
                                 text)

revision = '0006'
down_revision = '0001'


def upgrade() -> None:
    create_table('archive_cursor',
                 string('source', 32), integer('seq'), moment('updated_at', null=True),
                 key='source')
    create_table('group_admissions',
                 string('group_chat_id', 64), string('member_id', 64), integer('owner_id', null=True),
                 string('decision', 32), text('reason', null=True), string('decided_by', 64, null=True),
                 moment('decided_at', null=True), string('response_code', 128, null=True), created_at())
    create_table('group_announcements',
                 text('text'), string('building', 32, null=True), moment('send_at'), string('created_by', 64),
                 string('state', 16), moment('handed_out_at', null=True), created_at())
    create_table('group_suggestions',
                 string('group_chat_id', 64), string('staff_userid', 64), string('reply_to', 64, null=True),
                 text('question', null=True), text('text'), string('intent', 32, null=True), string('state', 16),
                 moment('sent_at', null=True), string('dedup_key', 128, null=True), created_at(),
                 unique=['dedup_key'], indexes={'ix_group_suggestions_staff_state': ['staff_userid', 'state']})
    create_table('mod_cases',
                 string('group_chat_id', 64), string('member_id', 64), string('violation', 16), string('step', 16),
                 integer('strikes'), integer('strike_total'), string('source', 16), string('actor', 64, null=True),
                 text('why', null=True), text('evidence', null=True), text('warning_text', null=True),
                 string('msg_id', 128, null=True), integer('inbox_id', null=True), moment('mute_until', null=True),
                 string('status', 16), flag('false_positive'), string('decided_by', 64, null=True),
                 moment('decided_at', null=True), string('response_code', 128, null=True), created_at(),
                 indexes={'ix_mod_cases_member': ['group_chat_id', 'member_id']})


def downgrade() -> None:
    drop_tables('mod_cases', 'group_suggestions', 'group_announcements', 'group_admissions', 'archive_cursor')
