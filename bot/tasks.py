"""rq tasks. Each takes ids, loads what it needs and is safe to run twice."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

from sqlalchemy import bindparam, update

from bot import clock, metrics
from bot.outbound import outbox
from handlers.message import Context, Message, Push
from store.db import session_scope
from store.models import InboxMessage, Owner

log = logging.getLogger(__name__)

_INBOX, _OWNERS = InboxMessage.__table__, Owner.__table__

# The hot path's statements, built once (construction and cache key cost ~0.1 ms each per
# call). Parameters prefixed b_ are the WHERE values; other keys are the columns to SET.
_CLAIM_INBOX = update(_INBOX).where(
    _INBOX.c.id == bindparam("b_id"), _INBOX.c.state.in_(("received", "queued", "stalled", "failed"))
).values(state="handling", attempts=_INBOX.c.attempts + 1).returning(
    _INBOX.c.payload, _INBOX.c.created_at, _INBOX.c.reply_mode)
_UPDATE_INBOX = update(_INBOX).where(_INBOX.c.id == bindparam("b_id"))
_TOUCH_OWNER = update(_OWNERS).where(_OWNERS.c.openid == bindparam("b_openid"))

# Passive replies only make sense while the web request can still be waiting.
PASSIVE_GRACE = timedelta(seconds=4)


def process_inbox(inbox_id: int) -> str:
    """Handle one stored message, once.

    Claim, handling, the outbox rows and the reply decision are one transaction
    (one commit per message: this is the passive-reply hot path). The claim is a
    conditional UPDATE, so a re-queued job finds nothing to do; if the handler
    fails, everything rolls back and the row is marked failed.
    """
    from handlers.dispatch import handle

    try:
        with session_scope() as s:
            # Core statements on the session's connection, not loaded objects or ORM-enabled
            # statements (about 0.6 ms less a message): this runs while the sender waits.
            conn = s.connection()
            claimed = conn.execute(_CLAIM_INBOX, {"b_id": inbox_id}).first()
            if claimed is None:
                return "already handled"
            payload, created_at, reply_mode = claimed
            msg = Message.from_json(payload)
            now = clock.now()
            if msg.channel == "mp":  # the 48 h customer-service window starts again
                conn.execute(_TOUCH_OWNER, {"b_openid": msg.sender, "last_inbound_at": now})
            out = handle(Context(session=s, now=now), msg)
            ids = [r.id for r in (outbox.add(s, p, now) for p in out.pushes) if r is not None]
            mode = "none"
            if out.replies:
                passive = reply_mode != "push" and _claim_passive(inbox_id, msg, created_at)
                mode = "passive" if passive else "pushed"
                if mode == "pushed":
                    ids += _push_replies(s, inbox_id, msg, out.replies)
            conn.execute(_UPDATE_INBOX, {"b_id": inbox_id, "state": "done", "handled_at": now,
                                         "replies": list(out.replies), "reply_mode": mode,
                                         "payload": {**payload, "role": msg.role}})
    except Exception as exc:
        log.exception("handling inbox %s failed", inbox_id)
        with session_scope() as s:
            # handled_at = when this attempt ended: the sweeper retries a failed row later
            # (a locked database, a lost connection), up to MAX_INBOX_ATTEMPTS.
            s.execute(update(InboxMessage).where(InboxMessage.id == inbox_id).values(
                state="failed", error=f"{type(exc).__name__}: {exc}"[:2000], handled_at=clock.now(),
                attempts=InboxMessage.attempts + 1))
        raise
    if mode == "passive" and not _hand_over(inbox_id, out.replies):
        deliver_replies(inbox_id, msg, out.replies, None, must_push=True)
        mode = "pushed"
    elif mode != "none":
        metrics.REPLIES.labels(mode).inc()
    outbox.queue_send(ids)
    return "done"


def _claim_passive(inbox_id: int, msg: Message, created_at) -> bool:
    """Win the race against the web request's deadline (see inbox.wait_for_reply)."""
    if msg.channel not in ("mp", "wecom") or created_at is None or clock.now() - created_at >= PASSIVE_GRACE:
        return False
    try:
        from bot.inbox import claim_key
        from bot.queues import get_redis

        return bool(get_redis().set(claim_key(inbox_id), "worker", nx=True, ex=3600))
    except Exception as exc:
        log.warning("passive claim for inbox %s failed (%s); pushing", inbox_id, exc)
        return False


def _hand_over(inbox_id: int, replies: list[str]) -> bool:
    """Give the waiting web request its replies (after the commit, so they are recorded)."""
    try:
        from bot.inbox import reply_list_key
        from bot.queues import get_redis

        key = reply_list_key(inbox_id)
        get_redis().pipeline(transaction=False).rpush(key, json.dumps(replies, ensure_ascii=False)).expire(key, 60).execute()
        return True
    except Exception as exc:
        log.warning("passive hand-over for inbox %s failed (%s); pushing", inbox_id, exc)
        return False


def _push_replies(s, inbox_id: int, msg: Message, replies: list[str]) -> list[int]:
    ids = []
    for i, text in enumerate(replies):
        row = outbox.add(s, Push(channel="mp" if msg.channel == "mp" else "wecom", recipient=msg.sender,
                                 kind="text", payload={"content": text}, dedup_key=f"reply:{inbox_id}:{i}",
                                 priority=1, source=f"inbox:{inbox_id}"))
        if row is not None:
            ids.append(row.id)
    return ids


def deliver_replies(inbox_id: int, msg: Message, replies: list[str], created_at, must_push: bool = False) -> str:
    """Passively through the waiting web request if it still waits, else pushed
    (the sweeper calls this for handled rows whose replies never left)."""
    mode = "pushed"
    if not must_push and _claim_passive(inbox_id, msg, created_at) and _hand_over(inbox_id, replies):
        mode = "passive"
    ids: list[int] = []
    with session_scope() as s:
        if mode == "pushed":
            ids = _push_replies(s, inbox_id, msg, replies)
        s.get(InboxMessage, inbox_id).reply_mode = mode
    outbox.queue_send(ids)
    metrics.REPLIES.labels(mode).inc()
    return mode


def send_outbox(outbox_id: int) -> str:
    from bot.outbound.sender import send_one

    return send_one(outbox_id)
