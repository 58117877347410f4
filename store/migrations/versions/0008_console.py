"""console: users and API tokens"""
from store.migration_kit import created_at, create_table, drop_tables, flag, integer, moment, string

revision = '0008'
down_revision = '0001'


def upgrade() -> None:
    create_table('console_users',
                 string('username', 64), string('name', 64), string('role', 16), string('password_hash', 256),
                 integer('staff_id', null=True), flag('active'), moment('last_login_at', null=True), created_at(),
                 refs={'staff_id': 'staff'}, unique=['username'])
    create_table('api_tokens',
                 integer('user_id'), string('token_hash', 64), string('label', 64, null=True),
                 moment('last_used_at', null=True), flag('revoked'), created_at(),
                 refs={'user_id': 'console_users'}, unique=['token_hash'])


def downgrade() -> None:
    drop_tables('api_tokens', 'console_users')
