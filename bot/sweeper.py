"""Nothing accepted is ever lost: re-queue inbox rows and outbox rows that no
worker has taken (Redis was down, a job vanished, a worker died)."""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import or_, select

from bot import clock
from store.db import session_scope
from store.models import InboxMessage, OutboxMessage

log = logging.getLogger(__name__)

STUCK_QUEUED = timedelta(minutes=2)
STUCK_HANDLING = timedelta(minutes=10)
MAX_INBOX_ATTEMPTS = 5
RETRY_FAILED = timedelta(minutes=1)


def sweep() -> dict:
    from bot.inbox import enqueue
    from bot.outbound.outbox import queue_send

    now = clock.now()
    with session_scope() as s:
        inbox_ids = list(s.scalars(select(InboxMessage.id).where(
            or_(InboxMessage.state == "received",
                (InboxMessage.state == "queued") & (InboxMessage.queued_at < now - STUCK_QUEUED),
                (InboxMessage.state == "handling") & (InboxMessage.attempts < MAX_INBOX_ATTEMPTS)
                & (InboxMessage.created_at < now - STUCK_HANDLING),
                # A failure may be passing (locked database, lost connection): try again later;
                # a bug fails MAX_INBOX_ATTEMPTS times and stays `failed` with its error.
                (InboxMessage.state == "failed") & (InboxMessage.attempts < MAX_INBOX_ATTEMPTS)
                & (InboxMessage.handled_at < now - RETRY_FAILED)),
        ).order_by(InboxMessage.id).limit(500)))
        for row in s.scalars(select(InboxMessage).where(InboxMessage.id.in_(inbox_ids),
                                                        InboxMessage.state == "handling")):
            row.state = "stalled"
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
    from bot.tasks import deliver_replies
    from handlers.message import Message

    for iid, payload, replies, created in pending_data:
        deliver_replies(iid, Message.from_json({k: v for k, v in payload.items()}), replies, created, must_push=True)
    queue_send(outbox_ids)
    if inbox_ids or outbox_ids or pending_data:
        log.info("sweeper: inbox %d/%d queued, outbox %d re-queued, %d replies pushed",
                 queued, len(inbox_ids), len(outbox_ids), len(pending_data))
    return {"inbox": queued, "outbox": len(outbox_ids), "replies": len(pending_data)}
