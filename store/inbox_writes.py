"""The inbox's two writes on the message path, as group-commit kinds (store/group_commit.py):
the webhook's new row (and the owner's 48 h window) and the outcome of a message handled in
the web process. Each has a one-row form and, for PostgreSQL, a form for a whole batch in
one statement: there every statement is a round trip to the server, and the writer thread
sending a batch's rows one by one spent most of the batch's time waiting (bench/PROFILE.md).

    inbox_id = group_commit.run_batched(INSERTS, NewRow(row, touch_openid), budget_s)
    held = group_commit.run_batched(FINISHES, finish_params, budget_s)

Results are the one-row forms' whatever the batch: the new row's id, or None for a
duplicate (its (channel, dedup_key) is already there, or earlier in the same batch); True
when the outcome was written (attempt `b_attempt` still holds the claim), False if not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, text, update
from sqlalchemy.engine import Connection

from store.group_commit import Batched
from store.models import InboxMessage, Owner

_INBOX, _OWNERS = InboxMessage.__table__, Owner.__table__

# Built once: a statement built per call costs its construction and cache key each time.
INSERT_INBOX = insert(_INBOX).returning(_INBOX.c.id)
NEW_ROW_COLUMNS = ("channel", "dedup_key", "sender", "kind", "payload", "state", "attempts", "queued_at",
                   "claimed_at", "reply_mode", "created_at")
# In a group commit a duplicate must not fail the batch: it inserts nothing and returns no id.
# Text, not the dialects' on_conflict_do_nothing(): that construct has no cache key, so it was
# compiled for every message (0.6 ms); this one is compiled once. SQLite >= 3.35 and PostgreSQL.
INSERT_NEW_INBOX = text(
    f"INSERT INTO inbox ({', '.join(NEW_ROW_COLUMNS)}) VALUES ({', '.join(':' + c for c in NEW_ROW_COLUMNS)})"
    " ON CONFLICT (channel, dedup_key) DO NOTHING RETURNING id"
).bindparams(*[bindparam(c, type_=_INBOX.c[c].type) for c in NEW_ROW_COLUMNS]).columns(_INBOX.c.id)
# The owner wrote: the 48 h customer-service window starts again.
TOUCH_OWNER = update(_OWNERS).where(_OWNERS.c.openid == bindparam("b_openid"))
# The outcome is written only by the claim's holder: if this attempt was too slow and the
# sweeper gave the row to another (lease lapsed), this matches nothing.
FINISH_INBOX = update(_INBOX).where(_INBOX.c.id == bindparam("b_id"), _INBOX.c.state == "handling",
                                    _INBOX.c.attempts == bindparam("b_attempt"))
FINISH_COLUMNS = ("state", "handled_at", "replies", "reply_mode", "payload")


@dataclass(frozen=True)
class NewRow:
    row: dict[str, Any]  # NEW_ROW_COLUMNS' values
    touch: str | None = None  # the owner's openid whose window restarts with this row


def _insert_one(conn: Connection, new: NewRow) -> int | None:
    stmt = INSERT_NEW_INBOX if conn.dialect.name in ("sqlite", "postgresql") else INSERT_INBOX
    got = conn.execute(stmt, new.row).scalar()
    if got is not None and new.touch:
        conn.execute(TOUCH_OWNER, {"b_openid": new.touch, "last_inbound_at": new.row["created_at"]})
    return got


# PostgreSQL's casts for the columns' values inside VALUES lists (a bare parameter there has
# no type the server can infer from a column).
_PG_TYPES = {"attempts": "INTEGER", "queued_at": "TIMESTAMP", "claimed_at": "TIMESTAMP", "created_at": "TIMESTAMP",
             "handled_at": "TIMESTAMP", "payload": "JSON", "replies": "JSON", "b_id": "INTEGER",
             "b_attempt": "INTEGER", "last_inbound_at": "TIMESTAMP"}
_TYPES = {**{c: _INBOX.c[c].type for c in (*NEW_ROW_COLUMNS, *FINISH_COLUMNS)},
          "b_id": _INBOX.c.id.type, "b_attempt": _INBOX.c.attempts.type, "b_openid": _OWNERS.c.openid.type,
          "last_inbound_at": _OWNERS.c.last_inbound_at.type}
_cache: dict[tuple[str, int], Any] = {}  # (statement, rows) -> text(): at most MAX_BATCH per statement


def _values(columns: tuple[str, ...], n: int) -> tuple[str, list]:
    """`(CAST(:c_0 AS T), ...), ...` for n rows, and its typed bind parameters."""
    rows, params = [], []
    for i in range(n):
        cells = []
        for c in columns:
            cells.append(f"CAST(:{c}_{i} AS {_PG_TYPES[c]})" if c in _PG_TYPES else f":{c}_{i}")
            params.append(bindparam(f"{c}_{i}", type_=_TYPES[c]))
        rows.append(f"({', '.join(cells)})")
    return ", ".join(rows), params


def _statement(name: str, n: int):
    got = _cache.get((name, n))
    if got is None:
        if name == "insert":
            values, params = _values(NEW_ROW_COLUMNS, n)
            got = text(f"INSERT INTO inbox ({', '.join(NEW_ROW_COLUMNS)}) VALUES {values}"
                       " ON CONFLICT (channel, dedup_key) DO NOTHING RETURNING id, channel, dedup_key"
                       ).bindparams(*params).columns(_INBOX.c.id, _INBOX.c.channel, _INBOX.c.dedup_key)
        elif name == "touch":
            values, params = _values(("b_openid", "last_inbound_at"), n)
            got = text(f"UPDATE owners SET last_inbound_at = v.last_inbound_at FROM (VALUES {values})"
                       " AS v(openid, last_inbound_at) WHERE owners.openid = v.openid").bindparams(*params)
        else:
            cols = ("b_id", "b_attempt", *FINISH_COLUMNS)
            values, params = _values(cols, n)
            sets = ", ".join(f"{c} = v.{c}" for c in FINISH_COLUMNS)
            got = text(f"UPDATE inbox SET {sets} FROM (VALUES {values}) AS v({', '.join(cols)})"
                       " WHERE inbox.id = v.b_id AND inbox.state = 'handling' AND inbox.attempts = v.b_attempt"
                       " RETURNING inbox.id").bindparams(*params).columns(_INBOX.c.id)
        _cache[(name, n)] = got
    return got


def _flat(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"{k}_{i}": v for i, row in enumerate(rows) for k, v in row.items()}


def _insert_many(conn: Connection, news: list[NewRow]) -> list[int | None]:
    """One INSERT for the batch's rows (and one UPDATE for the owners they touch)."""
    # In key order: two web processes inserting the same deliveries (a platform retry reaching
    # the other one) then wait on each other's keys in one order, never in a circle (deadlock).
    ordered = sorted(news, key=lambda new: (new.row["channel"], new.row["dedup_key"]))
    rows = [{c: new.row[c] for c in NEW_ROW_COLUMNS} for new in ordered]
    got = {(ch, key): i for i, ch, key in conn.execute(_statement("insert", len(rows)), _flat(rows))}
    results: list[int | None] = []
    touch: dict[str, Any] = {}
    for new in news:
        # pop: the same delivery twice in one batch (Redis down) is stored once, the second a duplicate
        inbox_id = got.pop((new.row["channel"], new.row["dedup_key"]), None)
        results.append(inbox_id)
        if inbox_id is not None and new.touch:
            at = new.row["created_at"]
            touch[new.touch] = max(at, touch.get(new.touch, at))
    if touch:
        conn.execute(_statement("touch", len(touch)),
                     _flat([{"b_openid": o, "last_inbound_at": at} for o, at in sorted(touch.items())]))
    return results


def _finish_one(conn: Connection, params: dict[str, Any]) -> bool:
    return conn.execute(FINISH_INBOX, params).rowcount == 1


def _finish_many(conn: Connection, items: list[dict[str, Any]]) -> list[bool]:
    """One UPDATE ... FROM VALUES for the batch's outcomes; each only where its claim holds."""
    cols = ("b_id", "b_attempt", *FINISH_COLUMNS)
    written = set(conn.execute(_statement("finish", len(items)),
                               _flat([{c: p[c] for c in cols} for p in items])).scalars())
    seen: set[int] = set()
    out = []
    for p in items:  # one row's outcome once (never twice in a batch: one claim, one writer)
        out.append(p["b_id"] in written and p["b_id"] not in seen)
        seen.add(p["b_id"])
    return out


INSERTS = Batched("inbox insert", _insert_one, _insert_many)
FINISHES = Batched("inbox outcome", _finish_one, _finish_many)
