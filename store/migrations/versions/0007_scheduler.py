"""scheduler: campaigns, deliveries, job runs, reminders, group bulk sends, survey answers, APScheduler job store"""
import sqlalchemy as sa

from store.migration_kit import (Unique, created_at, create_table, day, drop_tables, flag, integer, json, moment,
                                 string, text)

revision = '0007'
down_revision = '0001'


def upgrade() -> None:
    create_table('campaigns',
                 string('kind', 32), string('title', 128), text('text'), json('target'), moment('send_at'),
                 flag('emergency'), string('state', 16), string('created_by', 64), string('dedup_key', 128, null=True),
                 string('template_id', 64, null=True), moment('planned_at', null=True),
                 moment('started_at', null=True), moment('finished_at', null=True),
                 moment('cancelled_at', null=True), string('cancelled_by', 64, null=True), json('stats', null=True),
                 created_at(),
                 unique=['dedup_key'], indexes={'ix_campaigns_state_at': ['state', 'send_at']})
    create_table('campaign_deliveries',
                 integer('campaign_id'), string('recipient_key', 96), string('channel', 16), string('kind', 32),
                 string('address', 128), json('payload', null=True), string('state', 16), integer('attempts'),
                 integer('outbox_id', null=True), moment('sent_at', null=True), text('error', null=True),
                 refs={'campaign_id': 'campaigns'},
                 unique=[Unique(('campaign_id', 'recipient_key'), 'uq_campaign_deliveries_campaign_id')],
                 indexes={'ix_campaign_deliveries_campaign_state': ['campaign_id', 'state']})
    create_table('scheduler_job_runs',
                 string('job', 64), string('slot', 32), string('host', 128, null=True),
                 string('rq_job_id', 128, null=True), created_at(),
                 unique=[Unique(('job', 'slot'), 'uq_scheduler_job_runs_job')])
    create_table('scheduler_reminders',
                 string('rule', 16), string('subject', 64), string('period', 32), json('detail', null=True),
                 created_at(),
                 unique=[Unique(('rule', 'subject', 'period'), 'uq_scheduler_reminders_rule')])
    create_table('group_bulk_sends',
                 integer('group_id'), string('month', 7), integer('campaign_id'), created_at(),
                 refs={'campaign_id': 'campaigns', 'group_id': 'groups'},
                 unique=[Unique(('group_id', 'campaign_id'), 'uq_group_bulk_sends_group_id')],
                 indexes={'ix_group_bulk_sends_month': ['group_id', 'month']})
    create_table('survey_answers',
                 string('survey', 32), string('period', 16), integer('owner_id'),
                 string('building_code', 32, null=True), string('tier', 16, null=True), integer('score'),
                 text('comment', null=True), day('answered_on', null=True), created_at(),
                 refs={'owner_id': 'owners'},
                 unique=[Unique(('survey', 'period', 'owner_id'), 'uq_survey_answers_survey')])
    # APScheduler's SQLAlchemyJobStore table (same shape it would create itself),
    # here so the schema is whole after `guanjia db upgrade`.
    create_table('apscheduler_jobs',
                 sa.Column('id', sa.Unicode(length=191), nullable=False),
                 sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
                 sa.Column('job_state', sa.LargeBinary(), nullable=False),
                 key='id', indexes={'ix_apscheduler_jobs_next_run_time': ['next_run_time']})


def downgrade() -> None:
    drop_tables('apscheduler_jobs', 'survey_answers', 'group_bulk_sends', 'scheduler_reminders',
                'scheduler_job_runs', 'campaign_deliveries', 'campaigns')
