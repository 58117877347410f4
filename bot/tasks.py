"""rq tasks. Each takes ids, loads what it needs and is safe to run twice."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

from sqlalchemy import update

from bot import clock, metrics
from bot.outbound import outbox
from handlers.message import Context, Message, Push
from store.db import session_scope
from store.models import InboxMessage, Owner

log = logging.getLogger(__name__)

# Passive replies only make sense while the web request can still be waiting.
PASSIVE_GRACE = timedelta(seconds=4)


def process_inbox(inbox_id: int) -> str:
    from handlers.dispatch import handle

    with session_scope() as s:
        # Claim the row so a re-queued job cannot handle it a second time.
        claimed = s.execute(update(InboxMessage).where(
            InboxMessage.id == inbox_id, InboxMessage.state.in_(("received", "queued", "stalled"))
        ).values(state="handling", attempts=InboxMessage.attempts + 1)).rowcount
    if not claimed:
        return "already handled"

    try:
        with session_scope() as s:
            row = s.get(InboxMessage, inbox_id)
            msg = Message.from_json(row.payload)
            now = clock.now()
            if msg.channel == "mp":
                owner = s.query(Owner).filter(Owner.openid == msg.sender).one_or_none()
                if owner is not None:
                    owner.last_inbound_at = now
            must_push = row.reply_mode == "push"
            out = handle(Context(session=s, now=now), msg)
            ids = [r.id for r in (outbox.add(s, p, now) for p in out.pushes) if r is not None]
            row.state, row.handled_at = "done", now
            row.replies = list(out.replies)
            row.reply_mode = "pending" if out.replies else "none"
            row.payload = {**row.payload, "role": msg.role}
            created_at = row.created_at
    except Exception as exc:
        log.exception("handling inbox %s failed", inbox_id)
        with session_scope() as s:
            row = s.get(InboxMessage, inbox_id)
            row.state, row.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        raise
    outbox.queue_send(ids)
    if out.replies:
        deliver_replies(inbox_id, msg, out.replies, created_at, must_push)
    return "done"


def deliver_replies(inbox_id: int, msg: Message, replies: list[str], created_at, must_push: bool = False) -> str:
    """Passively through the waiting web request if it still waits, else pushed."""
    mode = "pushed"
    if not must_push and msg.channel in ("mp", "wecom") and clock.now() - created_at < PASSIVE_GRACE:
        try:
            from bot.inbox import claim_key, reply_list_key
            from bot.queues import get_redis

            r = get_redis()
            if r.set(claim_key(inbox_id), "worker", nx=True, ex=3600):
                r.rpush(reply_list_key(inbox_id), json.dumps(replies, ensure_ascii=False))
                r.expire(reply_list_key(inbox_id), 60)
                mode = "passive"
        except Exception as exc:
            log.warning("passive hand-over for inbox %s failed (%s); pushing", inbox_id, exc)
    if mode == "pushed":
        with session_scope() as s:
            ids = []
            for i, text in enumerate(replies):
                row = outbox.add(s, Push(channel="mp" if msg.channel == "mp" else "wecom", recipient=msg.sender,
                                         kind="text", payload={"content": text},
                                         dedup_key=f"reply:{inbox_id}:{i}", priority=1, source=f"inbox:{inbox_id}"))
                if row is not None:
                    ids.append(row.id)
        outbox.queue_send(ids)
    with session_scope() as s:
        s.get(InboxMessage, inbox_id).reply_mode = mode
    metrics.REPLIES.labels(mode).inc()
    return mode


def send_outbox(outbox_id: int) -> str:
    from bot.outbound.sender import send_one

    return send_one(outbox_id)
