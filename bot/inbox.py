"""Accepting a message: deduplicate, store, queue; and waiting for a passive reply.

Two layers against the platforms' retries: a Redis key (fast, TTL) and the
inbox table's unique (channel, dedup_key), which still holds after a Redis
flush. The row is written before the HTTP answer, so an accepted message
survives Redis being down; the sweeper queues it later.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from sqlalchemy import insert, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot import metrics
from bot.tasks import process_inbox
from ground import clock
from bot.queues import get_redis
from ground import keys
from handlers.message import Message
from store.db import connection_scope, is_busy, session_scope
from store.models import InboxMessage

log = logging.getLogger(__name__)

# The webhook waits at most this long in all for the database to store a message when
# no passive budget is given; the platform gives up on an answer after 5 s.
MIN_STORE_BUDGET_S = 1.0


@dataclass
class Accepted:
    inbox_id: int | None  # None for a duplicate
    queued: bool


class StoreUnavailable(Exception):
    """The message could not be stored (database locked past the budget, or down).
    Nothing was accepted: answer so that the platform tries again (not 200)."""


# The inbound lane: a plain Redis list of inbox ids that `guanjia worker` pops.
# Not an rq queue on purpose: rq 3 spends ~40 Redis round trips and ~4 ms of CPU
# per job (heartbeats, registries, execution records), more than handling a message,
# and the platform's user waits on it for the passive reply (bench/ingress.py). The
# inbox row is the durable record: a popped id whose worker died is re-queued by the
# sweeper (STUCK_QUEUED), and a failure is recorded on the row (state `failed`, error).
# Its key and the others below are in ground/keys.py.
_INBOX = InboxMessage.__table__
# Built once: a statement built per call costs its construction and cache key each time
# (~0.2 ms), while the platform waits. The columns come from the parameters' keys.
_INSERT_INBOX = insert(_INBOX).returning(_INBOX.c.id)


def accept(msg: Message, dedup_ttl_s: int = 600, store_budget_s: float = MIN_STORE_BUDGET_S) -> Accepted:
    """Deduplicate, store and queue one message. One database commit on the
    normal path (the row is written already marked `queued`), because this runs
    while the platform waits.

    A busy database (another writer holds the lock) is waited for and retried for up
    to `store_budget_s`; if the row still cannot be written, StoreUnavailable is raised
    and the Redis dedup key is taken back, so the platform's retry is stored then."""
    key = msg.dedup_key()
    redis_ok = True
    try:
        fresh = get_redis().set(keys.dedup(msg.channel, key), "1", nx=True, ex=dedup_ttl_s)
        if not fresh:
            metrics.DUPLICATES.labels(msg.channel, "redis").inc()
            log.info("duplicate %s %s dropped (redis)", msg.channel, key)
            return Accepted(None, False)
    except Exception as exc:
        redis_ok = False
        log.warning("redis unavailable for dedup (%s); relying on the inbox table", exc)

    try:
        inbox_id = _store(msg, key, redis_ok, store_budget_s)
    except IntegrityError:
        metrics.DUPLICATES.labels(msg.channel, "db").inc()
        log.info("duplicate %s %s dropped (inbox table)", msg.channel, key)
        return Accepted(None, False)
    except DBAPIError as exc:
        if redis_ok:  # not stored: the platform's retry must not look like a duplicate
            try:
                get_redis().delete(keys.dedup(msg.channel, key))
            except Exception as redis_exc:
                log.warning("could not take back the dedup key of %s %s (%s)", msg.channel, key, redis_exc)
        raise StoreUnavailable(f"inbox insert failed: {type(exc.orig).__name__ if exc.orig else type(exc).__name__}"
                               f"{' (busy)' if is_busy(exc) else ''}") from None
    metrics.ACCEPTED.labels(msg.channel).inc()
    if not redis_ok:
        return Accepted(inbox_id, False)
    if _enqueue_job(inbox_id):
        return Accepted(inbox_id, True)
    try:
        with session_scope() as s:  # Redis failed between the two calls
            # Conditional UPDATEs, never read-then-write: a worker may be handling the row
            # right now (the LPUSH may have landed before the connection broke).
            s.execute(update(InboxMessage).where(InboxMessage.id == inbox_id, InboxMessage.state == "queued")
                      .values(state="received", queued_at=None))
            s.execute(update(InboxMessage).where(InboxMessage.id == inbox_id, InboxMessage.reply_mode.is_(None))
                      .values(reply_mode="push"))  # nobody will wait for a passive reply
    except DBAPIError as exc:  # stored all the same: the sweeper re-queues a `queued` row nobody took
        log.warning("inbox %s stored but not marked for the sweeper (%s)", inbox_id, type(exc).__name__)
    return Accepted(inbox_id, False)


def _store(msg: Message, key: str, redis_ok: bool, budget_s: float) -> int:
    """Insert the inbox row, waiting for a busy database up to `budget_s` in all."""
    deadline = time.monotonic() + max(budget_s, 0.05)
    pause = 0.05
    while True:
        try:
            # Each try waits at most what is left of the budget for the other writer's lock.
            with connection_scope(busy_timeout_s=max(0.05, deadline - time.monotonic())) as conn:
                # Redis down: `received` + reply by push, so the sweeper queues it at once when Redis
                # is back. Redis up: `queued` now; if the process dies before the job is queued, the
                # sweeper still re-queues a `queued` row that nobody took (STUCK_QUEUED).
                # A Core statement, not an ORM object (~0.15 ms less): this runs while the platform waits.
                return conn.execute(_INSERT_INBOX, {
                    "channel": msg.channel, "dedup_key": key, "sender": msg.sender, "kind": msg.kind,
                    "payload": msg.to_json(), "state": "queued" if redis_ok else "received",
                    "queued_at": clock.now() if redis_ok else None, "reply_mode": None if redis_ok else "push",
                }).scalar_one()
        except IntegrityError:
            raise
        except DBAPIError as exc:
            if not is_busy(exc) or time.monotonic() + pause >= deadline:
                raise
            log.warning("inbox insert: database busy; retrying")
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def _enqueue_job(inbox_id: int) -> bool:
    """Put the row's id on the inbound lane (one LPUSH; see `consume`)."""
    try:
        get_redis().lpush(keys.INBOUND_LANE, inbox_id)
        return True
    except Exception as exc:
        log.warning("could not queue inbox %s (%s); the sweeper will", inbox_id, exc)
        return False


def enqueue(inbox_id: int) -> bool:
    """Queue handling of a stored row (the sweeper); False when Redis is down."""
    if not _enqueue_job(inbox_id):
        return False
    with session_scope() as s:
        # One conditional UPDATE: the worker may already have handled the row (done must stay done).
        # A `stalled` row (its worker died) becomes `queued` again, so it is watched as one.
        s.execute(update(InboxMessage).where(InboxMessage.id == inbox_id,
                                             InboxMessage.state.in_(("received", "queued", "stalled")))
                  .values(state="queued", queued_at=clock.now()))
    return True


def wait_for_reply(inbox_id: int, budget_s: float) -> list[str] | None:
    """Wait up to `budget_s` for the worker's replies; None means answer
    `success` now and let the worker push them later.

    The worker and this function race for one Redis key: whoever sets it first
    decides whether the replies go passively (worker won) or by push (we won).
    """
    r = get_redis()
    deadline = time.monotonic() + budget_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            got = r.blpop([keys.reply_list(inbox_id)], timeout=max(left, 0.01))
            if got:
                return json.loads(got[1])
        if r.set(keys.reply_claim(inbox_id), "web", nx=True, ex=3600):
            return None  # the worker will push
        got = r.blpop([keys.reply_list(inbox_id)], timeout=1)  # the worker won just now
        return json.loads(got[1]) if got else None
    except Exception as exc:
        log.warning("passive wait for inbox %s failed (%s); replies will be pushed", inbox_id, exc)
        return None


def lane_length() -> int:
    return int(get_redis().llen(keys.INBOUND_LANE))


def pop_and_process(timeout_s: float = 1.0) -> int | None:
    """Wait up to `timeout_s` for one inbox id and handle it; returns the id (None if idle).

    0 means "do not wait" (tests, draining)."""
    r = get_redis()
    if timeout_s <= 0:
        raw = r.rpop(keys.INBOUND_LANE)
    else:
        got = r.brpop([keys.INBOUND_LANE], timeout=timeout_s)
        raw = got[1] if got else None
    if raw is None:
        return None
    inbox_id = int(raw)
    try:
        process_inbox(inbox_id)
    except Exception:  # recorded on the row by process_inbox; the lane goes on
        pass
    return inbox_id


_worker_beat = None


def consume(stop, timeout_s: float = 1.0) -> None:
    """The lane's consumer loop (a thread of `guanjia worker`) until `stop` is set.
    Each round beats the worker's heartbeat (/healthz): a worker whose every lane
    thread is stuck shows as stale."""
    global _worker_beat
    from bot.heartbeat import Throttled

    if _worker_beat is None:
        _worker_beat = Throttled("workers")
    while not stop.is_set():
        try:
            pop_and_process(timeout_s)
            _worker_beat()
        except Exception as exc:  # Redis down: wait and retry; the rows are safe in the database
            log.warning("inbound lane: %s", exc)
            _worker_beat(ok=False, error=type(exc).__name__)
            stop.wait(1.0)
