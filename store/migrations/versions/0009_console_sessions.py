"""console sessions: server-side, revocable, idle-expiring (issue 13)"""
from store.migration_kit import created_at, create_table, drop_tables, integer, moment, string

revision = '0009'
down_revision = '0008'  # references console_users


def upgrade() -> None:
    create_table('console_sessions',
                 string('token_hash', 64), integer('user_id', null=True), string('admin_fp', 32, null=True),
                 string('address', 64, null=True), created_at(), moment('last_seen_at'), moment('expires_at'),
                 moment('ended_at', null=True), string('end_reason', 32, null=True),
                 refs={'user_id': 'console_users'}, unique=['token_hash'])


def downgrade() -> None:
    drop_tables('console_sessions')
