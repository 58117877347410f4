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

from redis.commands.core import Script
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot import metrics
from bot.channels.common import ReplayCheck
from bot.heartbeat import Throttled
from bot.queues import get_redis
from bot.tasks import process_inbox
from ground import clock, keys
from handlers.message import Message
from store import group_commit
from store.db import is_busy, session_scope
from store.inbox_writes import INSERTS, NewRow
from store.models import InboxMessage

log = logging.getLogger(__name__)

# The webhook waits at most this long in all for the database to store a message when
# no passive budget is given; the platform gives up on an answer after 5 s.
MIN_STORE_BUDGET_S = 1.0


@dataclass
class Accepted:
    inbox_id: int | None  # None for a duplicate
    queued: bool
    claimed: bool = False  # stored already claimed by this web process (attempt 1): handle it here


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
class _Duplicate(Exception):
    pass


class Replayed(Exception):
    """The request's timestamp+nonce was already used for another body (a copied URL
    carrying other words): refuse it (403 replayed_nonce); nothing was recorded."""


# The first layer in one round trip (was two: the nonce SET NX, then the dedup SET NX).
# KEYS: the nonce key ('' = no replay check), the dedup key. ARGV: the body's digest, the
# nonce's TTL, the pending mark, its TTL. Returns 'replayed', 'fresh', or the dedup key's
# value ('pending' while the first delivery is being stored, '1' once it is).
_FIRST_LAYER_LUA = b"""
if KEYS[1] ~= '' then
  if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
    if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'replayed' end
  end
end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'EX', ARGV[4]) then return 'fresh' end
return redis.call('GET', KEYS[2])
"""
_FIRST_LAYER = Script(None, _FIRST_LAYER_LUA)  # EVALSHA; loads the script once per server


def _first_layer(replay: ReplayCheck | None, dkey: str) -> bytes:
    nonce_args = (replay.key, replay.digest, replay.ttl_s) if replay is not None else ("", "", 0)
    got = _FIRST_LAYER(keys=[nonce_args[0], dkey], args=[nonce_args[1], nonce_args[2], PENDING, PENDING_TTL_S],
                       client=get_redis())
    return got if isinstance(got, bytes) else str(got).encode()


def _first_layer_check(msg: Message, key: str, dkey: str, replay: ReplayCheck | None) -> bool | None:
    """The Redis layer: True = a new delivery (marked pending), None = a duplicate, False =
    Redis is down (the inbox table's unique key is the only layer then)."""
    try:
        # "pending" while this delivery is being stored; "1" once it is. The platform
        # retries after 5 s while a busy database may still hold the first try: that
        # retry must hear "try again" (the first may yet fail and take the key back),
        # never "success" for a message that is not stored (it would be lost).
        # The request's replay check (timestamp+nonce, bot/channels/common.py) runs first,
        # in the same round trip: a replayed nonce leaves the dedup key untouched.
        seen = _first_layer(replay, dkey)
    except Exception as exc:
        if replay is not None:
            log.warning("redis unavailable for the nonce check (%s); signature and window still checked",
                        type(exc).__name__)
        log.warning("redis unavailable for dedup (%s); relying on the inbox table", exc)
        return False
    if seen == b"replayed":
        raise Replayed(replay.key if replay else "")
    if seen == b"fresh":
        return True
    if seen == PENDING.encode():
        raise StoreUnavailable("the first delivery of this message is still being stored")
    metrics.DUPLICATES.labels(msg.channel, "redis").inc()
    log.info("duplicate %s %s dropped (redis)", msg.channel, key)
    return None


def accept(msg: Message, dedup_ttl_s: int = 600, store_budget_s: float = MIN_STORE_BUDGET_S,
           claim: bool = False, replay: ReplayCheck | None = None) -> Accepted:
    """Deduplicate, store and queue one message. One database commit on the
    normal path (the row is written already marked `queued`), because this runs
    while the platform waits.

    `claim`: the web process will handle the message itself (bot/tasks.py::handle_in_web):
    the row is written already claimed (`handling`, attempt 1, its lease starting now)
    and not put on the lane. If this process dies, the lease lapses and the sweeper gives
    the row to a worker, as for a worker that died. Redis down: stored for the sweeper,
    as without `claim` (the row is the record; dedup's first layer is missing).

    A busy database (another writer holds the lock) is waited for and retried for up
    to `store_budget_s`; if the row still cannot be written, StoreUnavailable is raised
    and the Redis dedup key is taken back, so the platform's retry is stored then.

    `replay`: the request's timestamp+nonce check (the channel's `Inbound.replay`), made
    in the dedup's round trip; a nonce already used for another body raises Replayed and
    nothing is recorded. Redis down: allowed, as the check alone allows it."""
    key = msg.dedup_key()
    dkey = keys.dedup(msg.channel, key)
    redis_ok = _first_layer_check(msg, key, dkey, replay)
    if redis_ok is None:
        return Accepted(None, False)
    claim = claim and redis_ok
    try:
        # Once the row's transaction commits, the dedup key is marked stored ("1") by the
        # group commit's after-commit hook (`_mark_stored`: one round trip per batch).
        inbox_id = _store(msg, key, redis_ok, store_budget_s, claim, (dkey, dedup_ttl_s) if redis_ok else None)
    except (IntegrityError, _Duplicate) as exc:
        metrics.DUPLICATES.labels(msg.channel, "db").inc()
        log.info("duplicate %s %s dropped (inbox table)", msg.channel, key)
        if isinstance(exc, IntegrityError):  # rolled back: the hook did not run
            _stored(dkey, dedup_ttl_s, redis_ok)
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
    if claim:
        return Accepted(inbox_id, False, claimed=True)
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


# The first layer's mark while a delivery is being stored: bounded (a process that dies
# between the mark and the insert must not block the platform's retries for long).
PENDING = "pending"
PENDING_TTL_S = 30


def _stored(dkey: str, ttl_s: int, redis_ok: bool) -> None:
    """The delivery is in the inbox table: from now on a retry is a duplicate."""
    if not redis_ok:
        return
    try:
        get_redis().set(dkey, "1", ex=ttl_s)
    except Exception as exc:  # the table's unique key still drops the retry
        log.warning("could not mark %s stored in redis (%s)", dkey.rsplit(":", 1)[-1], exc)


def _mark_stored(notes: list) -> None:
    """The group commit's after-commit hook: the batch's deliveries are in the inbox table,
    so from now on a retry of any of them is a duplicate. One pipelined round trip."""
    marks = [n for n in notes if isinstance(n, tuple) and len(n) == 2]
    if not marks:
        return
    try:
        pipe = get_redis().pipeline(transaction=False)
        for dkey, ttl_s in marks:
            pipe.set(dkey, "1", ex=ttl_s)
        pipe.execute()
    except Exception as exc:  # the table's unique key still drops the retries
        log.warning("could not mark %d deliveries stored in redis (%s)", len(marks), exc)


group_commit.set_after_commit(_mark_stored)


def _store(msg: Message, key: str, redis_ok: bool, budget_s: float, claim: bool = False,
           mark: tuple[str, int] | None = None) -> int:
    """Insert the inbox row, waiting for a busy database up to `budget_s` in all.
    Through the process's group commit (store/group_commit.py) when it is on; `mark`
    (the dedup key, its TTL) is marked stored once the row is committed."""
    deadline = time.monotonic() + max(budget_s, 0.05)
    pause = 0.05
    now = clock.now()
    # Redis down: `received` + reply by push, so the sweeper queues it at once when Redis
    # is back. Redis up: `queued` now; if the process dies before the job is queued, the
    # sweeper still re-queues a `queued` row that nobody took (STUCK_QUEUED). Claimed:
    # `handling` attempt 1, the lease from now (the sweeper's CLAIM_LEASE).
    # A Core statement, not an ORM object (~0.15 ms less): this runs while the platform waits.
    row = {"channel": msg.channel, "dedup_key": key, "sender": msg.sender, "kind": msg.kind,
           "payload": msg.to_json(), "state": "queued" if redis_ok else "received", "attempts": 0,
           "queued_at": now if redis_ok else None, "claimed_at": None,
           "reply_mode": None if redis_ok else "push", "created_at": now}
    if claim:
        row |= {"state": "handling", "attempts": 1, "claimed_at": now}
    # The owner wrote: the 48 h customer-service window starts again (bot/tasks.py does the same
    # when the worker claims a row; a row claimed at insert does it in the insert's transaction).
    new = NewRow(row, msg.sender if claim and msg.channel == "mp" else None)

    while True:
        try:
            # Each try waits at most what is left of the budget for the other writer's lock.
            inbox_id = group_commit.run_batched(INSERTS, new, max(0.05, deadline - time.monotonic()), note=mark)
            if inbox_id is None:
                raise _Duplicate(key)
            return inbox_id
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
