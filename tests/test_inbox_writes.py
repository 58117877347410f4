"""The inbox's hot writes as one statement per group-commit batch (store/inbox_writes.py, used
on PostgreSQL): the same answers as the one-row forms, row by row. On SQLite the writer runs
the one-row forms, so this runs where the suite runs on PostgreSQL (GUANJIA_TEST_DATABASE_URL)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from ground import clock


def _row(i: int, now, dedup: str | None = None) -> dict:
    return {"channel": "mp", "dedup_key": dedup or f"w-{i}", "sender": f"o_w_{i}", "kind": "text",
            "payload": {"text": "你好", "n": i}, "state": "handling", "attempts": 1, "queued_at": now,
            "claimed_at": now, "reply_mode": None, "created_at": now}


def test_batched_insert_and_outcome_answer_as_one_row_each(env):
    from store.db import connection_scope, get_engine, session_scope
    from store.inbox_writes import FINISHES, INSERTS, NewRow
    from store.models import InboxMessage, Owner

    if get_engine().dialect.name != "postgresql":
        pytest.skip("the batched forms run on PostgreSQL only (store/group_commit.py::_run_jobs)")
    now = clock.now()
    with session_scope() as s:
        s.add_all([Owner(name="甲", openid="o_w_0"), Owner(name="乙", openid="o_w_1")])
    with connection_scope() as conn:  # an earlier delivery of w-9
        first = INSERTS.one(conn, NewRow(_row(9, now - timedelta(minutes=1))))
    news = [NewRow(_row(0, now), "o_w_0"), NewRow(_row(1, now), "o_w_1"), NewRow(_row(2, now, "w-9")),
            NewRow(_row(3, now), None), NewRow(_row(4, now, "w-3"), None)]  # w-9 stored; w-3 twice
    with connection_scope() as conn:
        ids = INSERTS.many(conn, news)
    assert ids[2] is None and ids[4] is None  # duplicates: of a stored row, and within the batch
    assert all(isinstance(i, int) for i in (ids[0], ids[1], ids[3])) and len({ids[0], ids[1], ids[3]}) == 3
    finish = [{"b_id": i, "b_attempt": 1, "state": "done", "handled_at": now, "replies": ["您好"],
               "reply_mode": "passive", "payload": {"text": "你好", "role": "owner"}} for i in (ids[0], ids[1])]
    finish.append({**finish[0], "b_id": ids[3], "b_attempt": 2})  # attempt 2 does not hold the claim
    finish.append({**finish[0], "b_id": first, "b_attempt": 1, "replies": []})
    with connection_scope() as conn:
        held = FINISHES.many(conn, finish)
    assert held == [True, True, False, True]
    with session_scope() as s:
        rows = {r.id: r for r in s.scalars(select(InboxMessage))}
        assert rows[ids[0]].state == "done" and rows[ids[0]].replies == ["您好"]
        assert rows[ids[0]].payload == {"text": "你好", "role": "owner"} and rows[ids[0]].handled_at == now
        assert rows[ids[3]].state == "handling" and rows[ids[3]].replies is None
        assert rows[first].state == "done" and rows[first].replies == []
        touched = {o.openid: o.last_inbound_at for o in s.scalars(select(Owner))}
        assert touched == {"o_w_0": now, "o_w_1": now}
