"""Migration 0014: the clocks of ticket_clocks and service_clocks move into the
one `clocks` table (running ones keep running; the old tables are left empty),
and the downgrade gives them back."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from store.migrate import alembic_config, upgrade

T0 = datetime(2026, 9, 15, 1, 0)  # naive UTC, as the columns store it


def _rows(engine, sql: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql))]


def test_0014_copies_both_clock_tables_and_the_downgrade_restores_them(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "0005")  # 0014 off: the two old tables are back, empty
    engine = sa.create_engine(url)
    tables = sa.inspect(engine).get_table_names()
    assert "clocks" not in tables and {"ticket_clocks", "service_clocks"} <= set(tables)
    due = T0.replace(hour=2)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO tickets (id, kind, priority, category, team, content, state, channel, sender, version,"
            " notified, reopen_count, nudges, created_at) VALUES (7, 'repair', 'urgent', 'plumbing', 'repair',"
            " '水管爆了', 'accepted', 'mp', 'o_x', 1, '[]', 1, 0, :t0)"), {"t0": T0})
        conn.execute(sa.text(
            "INSERT INTO ticket_clocks (ticket_id, clock, rule, round, started_at, due_at, warn_at, warned_at, state,"
            " breached_at, stopped_at, level, next_step_at) VALUES (7, 'on_site', 'O5', 1, :t0, :due, :t0, NULL,"
            " 'breached', :due, NULL, 1, :due)"), {"t0": T0, "due": due})
        conn.execute(sa.text(
            "INSERT INTO service_clocks (subject, clock, owner_id, team, assignee, started_at, due_at, stopped_at,"
            " state, breached_at, level, detail, created_at) VALUES"
            " ('booking:3', 'O2_review', NULL, 'customer_service', 'a|b', :t0, :due, NULL, 'running', :due, 1,"
            " '{\"title\": \"x\"}', :t0),"
            " ('consultation:1:1', 'O1', NULL, NULL, 'a', :t0, :due, :due, 'breached_met', :due, 1, NULL, :t0),"
            " ('application:2', 'O2_review', NULL, NULL, 'a', :t0, :due, :t0, 'met', NULL, 0, NULL, :t0)"),
            {"t0": T0, "due": due})

    upgrade(url)
    assert "clocks" in sa.inspect(engine).get_table_names()
    # The old tables are left empty and unused (0004 / 0005 own them; the downgrade refills them).
    assert _rows(engine, "SELECT id FROM ticket_clocks") == [] and _rows(engine, "SELECT id FROM service_clocks") == []
    rows = {r["subject"]: r for r in _rows(engine, "SELECT * FROM clocks")}
    assert set(rows) == {"ticket:7", "booking:3", "consultation:1:1", "application:2"}
    t = rows["ticket:7"]
    assert (t["family"], t["clock"], t["rule"], t["round"], t["ticket_id"], t["state"], t["level"]) == \
        ("ticket", "on_site", "O5", 1, 7, "breached", 1)
    b = rows["booking:3"]  # a running service clock past its deadline is "breached", as a ticket's
    assert (b["family"], b["rule"], b["state"], b["assignee"], b["team"]) == \
        ("service", "O2", "breached", "a|b", "customer_service")
    assert rows["consultation:1:1"]["state"] == "breached_met" and rows["consultation:1:1"]["rule"] == "O1"
    assert rows["application:2"]["state"] == "met"

    # The engine reads the copied rows: the broken booking clock is one of the open ones.
    from store.models import Clock

    with sa.orm.Session(engine) as s:
        open_ = s.scalars(sa.select(Clock).where(Clock.state.in_(("running", "breached")))).all()
        assert {(c.family, c.subject) for c in open_} == {("ticket", "ticket:7"), ("service", "booking:3")}
        assert next(c for c in open_ if c.subject == "ticket:7").due_at == due.replace(tzinfo=timezone.utc)

    command.downgrade(alembic_config(url), "0005")
    back = {r["subject"]: r for r in _rows(engine, "SELECT * FROM service_clocks")}
    assert back["booking:3"]["state"] == "running" and back["consultation:1:1"]["state"] == "breached_met"
    [tc] = _rows(engine, "SELECT * FROM ticket_clocks")
    assert (tc["ticket_id"], tc["clock"], tc["round"], tc["state"]) == (7, "on_site", 1, "breached")
    upgrade(url)  # and up again
    assert len(_rows(engine, "SELECT id FROM clocks")) == 4
