"""clocks: one table of running clocks (tickets' O4-O11, member services' O2/O3,
consultations' O1); the rows of ticket_clocks and service_clocks are copied
into it and the old tables left empty and unused (0004 and 0005 still own
them). The downgrade copies each family's rows back and drops `clocks`.

Revision ID: 0014
Revises: 0004, 0005
"""
from alembic import op
import sqlalchemy as sa
import store.types


revision = '0014'
down_revision = ('0004', '0005')  # references tickets and owners, replaces their clock tables
branch_labels = None
depends_on = None

# Rule codes of the service clocks (service_clocks had none: the clock id said it).
SERVICE_RULES = {'O1': 'O1', 'O2_review': 'O2', 'O2_contact': 'O2', 'O3': 'O3'}


def upgrade() -> None:
    op.create_table('clocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('clock', sa.String(length=32), nullable=False),
    sa.Column('rule', sa.String(length=8), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('team', sa.String(length=32), nullable=True),
    sa.Column('assignee', sa.String(length=256), nullable=True),
    sa.Column('started_at', store.types.UTCDateTime(), nullable=False),
    sa.Column('due_at', store.types.UTCDateTime(), nullable=False),
    sa.Column('warn_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('warned_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('breached_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('stopped_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('next_step_at', store.types.UTCDateTime(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_clocks_ticket_id_tickets')),
    sa.ForeignKeyConstraint(['owner_id'], ['owners.id'], name=op.f('fk_clocks_owner_id_owners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clocks')),
    sa.UniqueConstraint('subject', 'clock', 'round', name=op.f('uq_clocks_subject_clock_round'))
    )
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.create_index('ix_clocks_state_due', ['state', 'due_at'], unique=False)

    # Ticket clocks: created_at is when the clock started (the old table had no such column).
    op.execute(
        "INSERT INTO clocks (family, subject, clock, rule, round, ticket_id, owner_id, team, assignee,"
        " started_at, due_at, warn_at, warned_at, state, breached_at, stopped_at, level, next_step_at,"
        " detail, created_at)"
        " SELECT 'ticket', 'ticket:' || CAST(ticket_id AS VARCHAR(20)), clock, rule, round, ticket_id, NULL, NULL,"
        " NULL, started_at, due_at, warn_at, warned_at, state, breached_at, stopped_at, level, next_step_at,"
        " NULL, started_at FROM ticket_clocks ORDER BY id")
    # Service clocks: a running clock past its deadline (breached_at set) is "breached" now,
    # as a ticket's is; the rule code comes from the clock id.
    rule = "CASE clock " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SERVICE_RULES.items()) + " ELSE '' END"
    op.execute(
        "INSERT INTO clocks (family, subject, clock, rule, round, ticket_id, owner_id, team, assignee,"
        " started_at, due_at, warn_at, warned_at, state, breached_at, stopped_at, level, next_step_at,"
        " detail, created_at)"
        f" SELECT 'service', subject, clock, {rule}, 0, NULL, owner_id, team, assignee,"
        " started_at, due_at, NULL, NULL,"
        " CASE WHEN state = 'running' AND breached_at IS NOT NULL THEN 'breached' ELSE state END,"
        " breached_at, stopped_at, level, NULL, detail, created_at FROM service_clocks ORDER BY id")
    # The old tables stay, empty and unused (no model maps them): the downgrade refills them.
    op.execute("DELETE FROM service_clocks")
    op.execute("DELETE FROM ticket_clocks")


def downgrade() -> None:
    op.execute(
        "INSERT INTO ticket_clocks (ticket_id, clock, rule, round, started_at, due_at, warn_at, warned_at,"
        " state, breached_at, stopped_at, level, next_step_at)"
        " SELECT ticket_id, clock, rule, round, started_at, due_at, warn_at, warned_at,"
        " state, breached_at, stopped_at, level, next_step_at"
        " FROM clocks WHERE family = 'ticket' AND ticket_id IS NOT NULL ORDER BY id")
    # The first service engine kept a broken clock "running" (with breached_at) and
    # called a late stop "breached_met"; one row per (subject, clock): the latest round.
    op.execute(
        "INSERT INTO service_clocks (subject, clock, owner_id, team, assignee, started_at, due_at, stopped_at,"
        " state, breached_at, level, detail, created_at)"
        " SELECT subject, clock, owner_id, team, assignee, started_at, due_at, stopped_at,"
        " CASE state WHEN 'breached' THEN 'running' WHEN 'late' THEN 'breached_met' ELSE state END,"
        " breached_at, level, detail, created_at FROM clocks c"
        " WHERE family = 'service' AND round = (SELECT MAX(round) FROM clocks d"
        " WHERE d.family = 'service' AND d.subject = c.subject AND d.clock = c.clock) ORDER BY id")
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.drop_index('ix_clocks_state_due')
    op.drop_table('clocks')
