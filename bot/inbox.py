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

from sqlalchemy.exc import IntegrityError

from bot import clock, metrics
from bot.queues import get_queue, get_redis
from handlers.message import Message
from store.db import session_scope
from store.models import InboxMessage

log = logging.getLogger(__name__)


@dataclass
class Accepted:
    inbox_id: int | None  # None for a duplicate
    queued: bool


def _dedup_redis_key(channel: str, key: str) -> str:
    return f"guanjia:dedup:{channel}:{key}"


def reply_list_key(inbox_id: int) -> str:
    return f"guanjia:reply:{inbox_id}"


def claim_key(inbox_id: int) -> str:
    return f"guanjia:claim:{inbox_id}"


def accept(msg: Message, dedup_ttl_s: int = 600) -> Accepted:
    key = msg.dedup_key()
    try:
        fresh = get_redis().set(_dedup_redis_key(msg.channel, key), "1", nx=True, ex=dedup_ttl_s)
        if not fresh:
            metrics.DUPLICATES.labels(msg.channel, "redis").inc()
            log.info("duplicate %s %s dropped (redis)", msg.channel, key)
            return Accepted(None, False)
    except Exception as exc:
        log.warning("redis unavailable for dedup (%s); relying on the inbox table", exc)

    try:
        with session_scope() as s:
            row = InboxMessage(channel=msg.channel, dedup_key=key, sender=msg.sender, kind=msg.kind,
                               payload=msg.to_json(), state="received")
            s.add(row)
            s.flush()
            inbox_id = row.id
    except IntegrityError:
        metrics.DUPLICATES.labels(msg.channel, "db").inc()
        log.info("duplicate %s %s dropped (inbox table)", msg.channel, key)
        return Accepted(None, False)
    metrics.ACCEPTED.labels(msg.channel).inc()
    queued = enqueue(inbox_id)
    if not queued:
        # Nobody will wait for a passive reply: tell the worker to push it.
        with session_scope() as s:
            s.get(InboxMessage, inbox_id).reply_mode = "push"
    return Accepted(inbox_id, queued)


def enqueue(inbox_id: int) -> bool:
    """Queue handling; False (and the row stays `received`) when Redis is down."""
    try:
        get_queue("inbound").enqueue("bot.tasks.process_inbox", inbox_id, job_id=f"inbox-{inbox_id}",
                                     failure_ttl=7 * 86400)
    except Exception as exc:
        log.warning("could not queue inbox %s (%s); the sweeper will", inbox_id, exc)
        return False
    with session_scope() as s:
        row = s.get(InboxMessage, inbox_id)
        if row is not None and row.state == "received":
            row.state, row.queued_at = "queued", clock.now()
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
            got = r.blpop([reply_list_key(inbox_id)], timeout=max(left, 0.01))
            if got:
                return json.loads(got[1])
        if r.set(claim_key(inbox_id), "web", nx=True, ex=3600):
            return None  # the worker will push
        got = r.blpop([reply_list_key(inbox_id)], timeout=1)  # the worker won just now
        return json.loads(got[1]) if got else None
    except Exception as exc:
        log.warning("passive wait for inbox %s failed (%s); replies will be pushed", inbox_id, exc)
        return None
