"""Nothing accepted is ever lost: re-queue inbox rows and outbox rows that no
worker has taken (Redis was down, a job vanished, a worker died), and owners'
photos whose media fetch never ran (bot/media_fetch.py::retry_pending)."""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import or_, select

from bot.inbox import enqueue
from bot.media_fetch import retry_pending
from bot.outbound.outbox import queue_send
from bot.queues import get_redis
from bot.tasks import deliver_replies
from ground import clock, keys
from handlers.message import Message
from store.db import session_scope
from store.models import InboxMessage, OutboxMessage

log = logging.getLogger(__name__)

# A `queued` row this old whose id is not on the lane lost its id (a worker popped it
# and died before claiming it, or Redis restarted empty).
STUCK_QUEUED = timedelta(seconds=20)
# A claim is a lease: a worker handles a message in milliseconds (routing is capped), so
# a row still `handling` this long after its claim belongs to a dead worker. With the
# sweeper every 5 s it is re-queued within 25 s (issue 13: within 30 s). A live but slow
# worker that finishes after that finds its claim taken and rolls back (bot/tasks.py).
CLAIM_LEASE = timedelta(seconds=20)
STUCK_HANDLING = timedelta(minutes=10)  # rows claimed before claimed_at existed
MAX_INBOX_ATTEMPTS = 5
RETRY_FAILED = timedelta(minutes=1)
LANE_SCAN_MAX = 10000  # ids read from the lane to tell waiting rows from lost ones


def _on_lane() -> set[int] | None:
    """The ids waiting on the inbound lane (None if Redis cannot say)."""
    try:
        return {int(x) for x in get_redis().lrange(keys.INBOUND_LANE, 0, LANE_SCAN_MAX - 1)}
    except Exception:
        return None


def sweep() -> dict:
    now = clock.now()
    with session_scope() as s:
        lapsed = (InboxMessage.claimed_at < now - CLAIM_LEASE) | (
            InboxMessage.claimed_at.is_(None) & (InboxMessage.created_at < now - STUCK_HANDLING))
        inbox_ids = list(s.scalars(select(InboxMessage.id).where(
            or_(InboxMessage.state == "received",
                (InboxMessage.state == "queued") & (InboxMessage.queued_at < now - STUCK_QUEUED),
                (InboxMessage.state.in_(("handling", "stalled"))) & (InboxMessage.attempts < MAX_INBOX_ATTEMPTS)
                & lapsed,
                # A failure may be passing (locked database, lost connection): try again later;
                # a bug fails MAX_INBOX_ATTEMPTS times and stays `failed` with its error.
                (InboxMessage.state == "failed") & (InboxMessage.attempts < MAX_INBOX_ATTEMPTS)
                & (InboxMessage.handled_at < now - RETRY_FAILED)),
        ).order_by(InboxMessage.id).limit(500)))
        waiting = _on_lane()
        if waiting:  # a backlog is not a loss: those ids will be popped
            queued = set(s.scalars(select(InboxMessage.id).where(InboxMessage.id.in_(inbox_ids),
                                                                 InboxMessage.state == "queued")))
            inbox_ids = [i for i in inbox_ids if not (i in queued and i in waiting)]
        for row in s.scalars(select(InboxMessage).where(InboxMessage.id.in_(inbox_ids),
                                                        InboxMessage.state == "handling")):
            row.state = "stalled"  # the dead worker's claim is void (see bot/tasks.py _FINISH_INBOX)
        # Handled, but the replies never left (a crash between commit and delivery).
        pending = list(s.scalars(select(InboxMessage).where(
            InboxMessage.state == "done", InboxMessage.reply_mode.in_(("pending", "push")),
            InboxMessage.handled_at < now - timedelta(seconds=30)).limit(200)))
        pending_data = [(r.id, r.payload, r.replies or [], r.created_at) for r in pending]
        outbox_ids = list(s.scalars(select(OutboxMessage.id).where(
            OutboxMessage.state.in_(("queued", "failed")),
            OutboxMessage.next_attempt_at <= now - timedelta(seconds=10)).order_by(
            OutboxMessage.priority, OutboxMessage.id).limit(1000)))
    queued = sum(1 for i in inbox_ids if enqueue(i))
    for iid, payload, replies, created in pending_data:
        deliver_replies(iid, Message.from_json({k: v for k, v in payload.items()}), replies, created, must_push=True)
    queue_send(outbox_ids)

    media = retry_pending(now)  # photos whose fetch was never queued or did not get through
    if inbox_ids or outbox_ids or pending_data:
        log.info("sweeper: inbox %d/%d queued, outbox %d re-queued, %d replies pushed",
                 queued, len(inbox_ids), len(outbox_ids), len(pending_data))
    return {"inbox": queued, "outbox": len(outbox_ids), "replies": len(pending_data), "media": media}
