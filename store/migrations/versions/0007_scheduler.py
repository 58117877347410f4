"""scheduler: campaigns, deliveries, job runs, reminders, group bulk sends, survey answers, APScheduler job store

Revision ID: 0007
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import store.types


revision = '0007'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('target', sa.JSON(), nullable=False),
    sa.Column('send_at', store.types.UTCDateTime(), nullable=False),
    sa.Column('emergency', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('dedup_key', sa.String(length=128), nullable=True),
    sa.Column('template_id', sa.String(length=64), nullable=True),
    sa.Column('planned_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('started_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('finished_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('cancelled_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('cancelled_by', sa.String(length=64), nullable=True),
    sa.Column('stats', sa.JSON(), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_campaigns_dedup_key'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index('ix_campaigns_state_at', ['state', 'send_at'], unique=False)

    op.create_table('campaign_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('recipient_key', sa.String(length=96), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('address', sa.String(length=128), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.Column('sent_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_deliveries_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_deliveries')),
    sa.UniqueConstraint('campaign_id', 'recipient_key', name=op.f('uq_campaign_deliveries_campaign_id'))
    )
    with op.batch_alter_table('campaign_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_deliveries_campaign_state', ['campaign_id', 'state'], unique=False)

    op.create_table('scheduler_job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('slot', sa.String(length=32), nullable=False),
    sa.Column('host', sa.String(length=128), nullable=True),
    sa.Column('rq_job_id', sa.String(length=128), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduler_job_runs')),
    sa.UniqueConstraint('job', 'slot', name=op.f('uq_scheduler_job_runs_job'))
    )
    op.create_table('scheduler_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('period', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduler_reminders')),
    sa.UniqueConstraint('rule', 'subject', 'period', name=op.f('uq_scheduler_reminders_rule'))
    )
    op.create_table('group_bulk_sends',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_group_bulk_sends_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_group_bulk_sends_group_id_groups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_bulk_sends')),
    sa.UniqueConstraint('group_id', 'campaign_id', name=op.f('uq_group_bulk_sends_group_id'))
    )
    with op.batch_alter_table('group_bulk_sends', schema=None) as batch_op:
        batch_op.create_index('ix_group_bulk_sends_month', ['group_id', 'month'], unique=False)

    op.create_table('survey_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey', sa.String(length=32), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('building_code', sa.String(length=32), nullable=True),
    sa.Column('tier', sa.String(length=16), nullable=True),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('answered_on', sa.Date(), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['owners.id'], name=op.f('fk_survey_answers_owner_id_owners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_answers')),
    sa.UniqueConstraint('survey', 'period', 'owner_id', name=op.f('uq_survey_answers_survey'))
    )
    # APScheduler's SQLAlchemyJobStore table (same shape it would create itself),
    # here so the schema is whole after `guanjia db upgrade`.
    op.create_table('apscheduler_jobs',
    sa.Column('id', sa.Unicode(length=191), nullable=False),
    sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
    sa.Column('job_state', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apscheduler_jobs'))
    )
    with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_apscheduler_jobs_next_run_time', ['next_run_time'], unique=False)


def downgrade() -> None:
    op.drop_table('apscheduler_jobs')
    op.drop_table('survey_answers')
    op.drop_table('group_bulk_sends')
    op.drop_table('scheduler_reminders')
    op.drop_table('scheduler_job_runs')
    op.drop_table('campaign_deliveries')
    op.drop_table('campaigns')
