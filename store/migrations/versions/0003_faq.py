"""faq: unanswered questions"""
from store.migration_kit import created_at, create_table, drop_tables, flag, json, number, string, text

revision = '0003'
down_revision = '0001'


def upgrade() -> None:
    create_table('faq_misses',
                 text('text'), string('normalized', 500), string('chat', 16), string('sender', 64, null=True),
                 string('kind', 16), string('best_id', 64, null=True), number('best_score'),
                 json('candidates', null=True), flag('resolved'), created_at(),
                 indexes={'ix_faq_misses_created': ['created_at']})


def downgrade() -> None:
    drop_tables('faq_misses')
