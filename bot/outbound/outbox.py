"""Producers put Pushes here; the sender task takes them out.

The row is the record (state, attempts, last platform error); enqueueing the rq
job is best effort, since the sweeper re-queues anything left behind.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.queues import get_queue
from ground import clock, keys
from handlers.message import Push
from store.models import OutboxMessage

log = logging.getLogger(__name__)


def add(session: Session, push: Push, now: datetime | None = None) -> OutboxMessage | None:
    """Record a push; returns None when its dedup_key was already recorded."""
    if push.dedup_key:
        existing = session.scalar(select(OutboxMessage).where(OutboxMessage.dedup_key == push.dedup_key))
        if existing is not None:
            return None
    row = OutboxMessage(channel=push.channel, kind=push.kind, recipient=push.recipient, payload=push.payload,
                        dedup_key=push.dedup_key, priority=push.priority, source=push.source,
                        next_attempt_at=now or clock.now())
    session.add(row)
    session.flush()
    return row


def queue_send(outbox_ids: list[int]) -> None:
    """Ask a worker to send these rows now (after the producing transaction committed)."""
    if not outbox_ids:
        return
    try:
        q = get_queue("outbound")
        for oid in outbox_ids:
            q.enqueue("bot.tasks.send_outbox", oid, job_id=keys.send_job_id(oid, int(clock.now().timestamp())))
    except Exception as exc:  # Redis down: the sweeper will pick the rows up
        log.warning("could not queue outbox %s now (%s); the sweeper will", outbox_ids, exc)
