"""clocks: one table of running clocks (tickets' O4-O11, member services' O2/O3,
consultations' O1); the rows of ticket_clocks and service_clocks are copied
into it and the old tables left empty and unused (0004 and 0005 still own
them). The downgrade copies each family's rows back and drops `clocks`.
"""
from alembic import op

from store.migration_kit import created_at, create_table, integer, json, moment, string

revision = '0014'
down_revision = ('0004', '0005')  # references tickets and owners, replaces their clock tables

# Rule codes of the service clocks (service_clocks had none: the clock id said it).
SERVICE_RULES = {'O1': 'O1', 'O2_review': 'O2', 'O2_contact': 'O2', 'O3': 'O3'}


def upgrade() -> None:
    create_table('clocks',
                 string('family', 16), string('subject', 64), string('clock', 32), string('rule', 8),
                 integer('round'), integer('ticket_id', null=True), integer('owner_id', null=True),
                 string('team', 32, null=True), string('assignee', 256, null=True), moment('started_at'),
                 moment('due_at'), moment('warn_at', null=True), moment('warned_at', null=True), string('state', 16),
                 moment('breached_at', null=True), moment('stopped_at', null=True), integer('level'),
                 moment('next_step_at', null=True), json('detail', null=True), created_at(),
                 refs={'ticket_id': 'tickets', 'owner_id': 'owners'}, unique=[('subject', 'clock', 'round')],
                 indexes={'ix_clocks_state_due': ['state', 'due_at']})

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
    op.drop_table('clocks')  # its index goes with it
