"""Group commit: one writer thread per process runs the request threads' short writes
(the webhook's inbox row, the outcome of a message handled in the web process) in one
transaction every few milliseconds, and wakes each request once its write is durable.

Why: 32 request threads each committing their own row queue for SQLite's one write
lock (and, on PostgreSQL, pay a commit round trip each); one writer turns N commits
into one, and the lock is taken by one thread of the process, not sixteen.

    row_id = group_commit.run(lambda conn: conn.execute(stmt, params).scalar(), budget_s=1.0)

A job is a function of a Core connection inside the batch's transaction. It must not
raise on expected outcomes (a duplicate is `INSERT ... ON CONFLICT DO NOTHING`
returning nothing; a lost claim is rowcount 0). If a batch fails anyway (a constraint,
a driver error), its jobs are re-run one transaction each, so only the bad one fails.
A busy database is retried within the jobs' budgets; a job whose budget is over
before it was written gets an OperationalError (nothing of it was committed).

A job may be `Batched`: one statement for every job of its kind in the batch, on
PostgreSQL (store/inbox_writes.py: one multi-row INSERT, one UPDATE ... FROM VALUES), where
each statement is a round trip to the server and the writer would otherwise send them one
by one. Elsewhere (SQLite: a statement is a call, not a round trip) each runs on its own.

A job may carry a `note`: once its transaction has committed, the notes of the batch go
to the process's after-commit hook in one call (`set_after_commit`), before the jobs'
callers are woken. bot/inbox.py marks the batch's dedup keys stored in Redis that way:
one pipelined round trip per batch instead of one per message.

`GUANJIA_GROUP_COMMIT_MS` (ground.config: `group_commit_ms`) is how long the writer
lingers for more jobs after the first, when jobs are coming in together (the previous
batch had more than one, or more are queued); a lone job is written at once. 0 turns
the writer off (each caller commits its own transaction, as before).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from ground.config import get_settings
from store.db import connection_scope, get_engine, is_busy

log = logging.getLogger(__name__)

MAX_BATCH = 256  # jobs in one transaction: bounded, so one commit stays short


@dataclass(frozen=True)
class Batched:
    """A kind of write that can run for many jobs in one statement. `one(conn, item)` and
    `many(conn, items)` give the same results as calling `one` for each item in turn
    (`many` returns them in the items' order)."""

    name: str
    one: Callable[[Connection, Any], Any]
    many: Callable[[Connection, list[Any]], list[Any]]


class _Job:
    __slots__ = ("fn", "deadline", "done", "result", "error", "note", "batched", "item")

    def __init__(self, fn: Callable[[Connection], Any], deadline: float, note: Any = None,
                 batched: Batched | None = None, item: Any = None) -> None:
        self.fn, self.deadline, self.note = fn, deadline, note
        self.batched, self.item = batched, item
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


def _not_written(why: str) -> OperationalError:
    # An OperationalError that is_busy() recognises: the caller's "database busy" path.
    return OperationalError("group commit", None, TimeoutError(f"database busy: {why}"))


class Writer:
    """The writer thread of one process and one engine."""

    def __init__(self, linger_s: float) -> None:
        self.linger_s = linger_s
        self.engine = get_engine()
        self.pid = os.getpid()
        self.q: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.batches = 0  # transactions committed (tests, the benchmark)
        self.jobs = 0
        threading.Thread(target=self._loop, daemon=True, name="group-commit").start()

    def submit(self, fn: Callable[[Connection], Any], budget_s: float, note: Any = None,
               batched: Batched | None = None, item: Any = None) -> Any:
        job = _Job(fn, time.monotonic() + budget_s, note, batched, item)
        self.q.put(job)
        # A little past the budget: the writer itself refuses jobs whose budget is over,
        # so an answer always comes unless the thread is stuck in a commit.
        if not job.done.wait(budget_s + 2.0):
            raise _not_written("the writer did not answer in time")
        if job.error is not None:
            raise job.error
        return job.result

    def _loop(self) -> None:
        last = 1
        while True:
            batch = [self.q.get()]
            # Linger only while requests come in together (the last batch had company, or
            # more are queued already): a lone request at a quiet hour is written at once
            # instead of waiting the linger twice (inbox row, outcome) for company that is
            # not coming (sequential requests: 6.4 ms -> 2.9 ms each at 2 ms linger).
            lingered = self.linger_s <= 0 or (last <= 1 and self.q.empty())
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self.q.get_nowait())
                except queue.Empty:
                    if lingered:
                        break
                    lingered = True  # once: a few ms for the requests arriving right now
                    try:
                        batch.append(self.q.get(timeout=self.linger_s))
                    except queue.Empty:
                        break
            last = len(batch)
            try:
                self._write(batch)
            except BaseException as exc:  # never let the thread die: every waiter gets an answer
                log.exception("group commit: batch failed")
                for job in batch:
                    if not job.done.is_set():
                        job.error = exc
                        job.done.set()

    def _write(self, batch: list[_Job]) -> None:
        pause = 0.005
        while batch:
            now = time.monotonic()
            late = [j for j in batch if j.deadline <= now]
            for job in late:
                job.error = _not_written("not written within the budget")
                job.done.set()
            batch = [j for j in batch if j.deadline > now]
            if not batch:
                return
            budget = max(0.05, min(j.deadline for j in batch) - now)
            try:
                with connection_scope(busy_timeout_s=budget) as conn:
                    results = _run_jobs(conn, batch)
            except DBAPIError as exc:
                if is_busy(exc):
                    time.sleep(pause)  # another process holds the lock past our wait: again
                    pause = min(pause * 2, 0.2)
                    continue
                if len(batch) > 1:  # one job's fault (or the batch's): each on its own
                    for job in batch:
                        self._write([job])
                    return
                batch[0].error = exc
                batch[0].done.set()
                return
            self.batches += 1
            self.jobs += len(batch)
            _committed([job.note for job in batch if job.note is not None])
            for job, result in zip(batch, results):
                job.result = result
                job.done.set()
            return


def _run_jobs(conn: Connection, batch: list[_Job]) -> list[Any]:
    """The jobs' results in their order; on PostgreSQL each Batched kind as one statement."""
    if len(batch) == 1 or conn.dialect.name != "postgresql":
        return [job.fn(conn) for job in batch]
    results: list[Any] = [None] * len(batch)
    kinds: dict[str, list[int]] = {}
    for i, job in enumerate(batch):
        if job.batched is None:
            results[i] = job.fn(conn)
        else:
            kinds.setdefault(job.batched.name, []).append(i)
    for where in kinds.values():
        kind = batch[where[0]].batched
        got = kind.many(conn, [batch[i].item for i in where]) if len(where) > 1 else [batch[where[0]].fn(conn)]
        for i, result in zip(where, got):
            results[i] = result
    return results


_writer: Writer | None = None
_lock = threading.Lock()
_after_commit: Callable[[list[Any]], None] | None = None


def set_after_commit(fn: Callable[[list[Any]], None] | None) -> None:
    """What runs, once per committed transaction, with the notes of its jobs (see above)."""
    global _after_commit
    _after_commit = fn


def _committed(notes: list[Any]) -> None:
    hook = _after_commit
    if not notes or hook is None:
        return
    try:
        hook(notes)
    except Exception:  # the rows are committed whatever the hook does; never fail the batch
        log.exception("group commit: after-commit hook failed")


def writer(linger_s: float) -> Writer:
    """This process's writer for the current engine (a new one after a fork or after
    the engine was replaced, as tests do)."""
    global _writer
    w = _writer
    if w is not None and w.pid == os.getpid() and w.engine is get_engine():
        return w
    with _lock:
        w = _writer
        if w is None or w.pid != os.getpid() or w.engine is not get_engine():
            w = _writer = Writer(linger_s)  # the old thread idles forever on its own queue
        return w


def run(fn: Callable[[Connection], Any], budget_s: float, linger_ms: float | None = None, note: Any = None) -> Any:
    """Run `fn(conn)` in a transaction committed before this returns: the process's
    group commit if on, else a transaction of its own (waiting for a busy database up
    to `budget_s`). `note` goes to the after-commit hook once committed."""
    if linger_ms is None:
        linger_ms = get_settings().group_commit_ms
    if linger_ms <= 0:
        with connection_scope(busy_timeout_s=budget_s) as conn:
            result = fn(conn)
        if note is not None:
            _committed([note])
        return result
    return writer(linger_ms / 1000.0).submit(fn, budget_s, note)


def run_batched(batched: Batched, item: Any, budget_s: float, linger_ms: float | None = None,
                note: Any = None) -> Any:
    """`run` for a Batched write: `batched.one(conn, item)`, or its share of one `many`."""
    fn = lambda conn: batched.one(conn, item)  # noqa: E731
    if linger_ms is None:
        linger_ms = get_settings().group_commit_ms
    if linger_ms <= 0:
        return run(fn, budget_s, linger_ms, note)
    return writer(linger_ms / 1000.0).submit(fn, budget_s, note, batched, item)
