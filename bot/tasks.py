"""rq tasks. Each takes ids, loads what it needs and is safe to run twice."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

from sqlalchemy import bindparam, update
from sqlalchemy.exc import DBAPIError

from bot import metrics
from bot.outbound import outbox
from bot.outbound.sender import send_one
from bot.queues import get_redis
from ground import clock, keys
from ground.config import get_settings
from handlers import dispatch  # dispatch.handle, looked up per call (tests patch it)
from handlers.message import Context, Message, Push
from store import group_commit
from store.db import is_busy, new_session, retry_busy, session_scope, wrote
from store.inbox_writes import FINISH_INBOX, FINISHES
from store.models import InboxMessage, Owner

log = logging.getLogger(__name__)

_INBOX, _OWNERS = InboxMessage.__table__, Owner.__table__

# The hot path's statements, built once (construction and cache key cost ~0.1 ms each per
# call). Parameters prefixed b_ are the WHERE values; other keys are the columns to SET.
_CLAIM_INBOX = update(_INBOX).where(
    _INBOX.c.id == bindparam("b_id"), _INBOX.c.state.in_(("received", "queued", "stalled", "failed"))
).values(state="handling", attempts=_INBOX.c.attempts + 1, claimed_at=bindparam("b_now")).returning(
    _INBOX.c.payload, _INBOX.c.created_at, _INBOX.c.reply_mode, _INBOX.c.attempts)
# The outcome is written only by the claim's holder: if this worker was too slow and the
# sweeper gave the row to another (lease lapsed), this matches nothing and rolls back.
_FINISH_INBOX = FINISH_INBOX
_TOUCH_OWNER = update(_OWNERS).where(_OWNERS.c.openid == bindparam("b_openid"))

# Passive replies only make sense while the web request can still be waiting.
PASSIVE_GRACE = timedelta(seconds=4)
# A locked database (another writer, a backup) is waited out for this long in all before
# the attempt counts as failed; the sweeper retries a failed row later.
BUSY_BUDGET_S = 120.0


class _ClaimLost(Exception):
    """The lease lapsed and another worker took the row: this attempt's work is void."""


def process_inbox(inbox_id: int) -> str:
    """Handle one stored message, once.

    Short write transactions, so the webhook's insert never waits behind handling:
    1. claim and commit (a conditional UPDATE; a re-queued id finds nothing to do);
    2. handle, then write the outcome (the handler's own rows, the outbox rows, the
       reply decision and `done`) in one transaction that commits only if this
       worker still holds the claim; a busy database re-runs it (it rolled back);
    3. if the handler fails, a short transaction marks the row failed.
    """
    claimed = retry_busy(lambda: _claim(inbox_id), BUSY_BUDGET_S, f"claim inbox {inbox_id}")
    if claimed is None:
        return "already handled"
    payload, created_at, reply_mode, attempt = claimed
    try:
        out, ids, mode, msg = retry_busy(lambda: _handle(inbox_id, attempt, payload, created_at, reply_mode),
                                         BUSY_BUDGET_S, f"handle inbox {inbox_id}")
    except _ClaimLost:
        log.warning("inbox %s: claim lapsed and was taken over; this attempt is dropped", inbox_id)
        return "taken over"
    except Exception as exc:
        log.exception("handling inbox %s failed", inbox_id)
        retry_busy(lambda: _mark_failed(inbox_id, attempt, exc), BUSY_BUDGET_S, f"mark inbox {inbox_id} failed")
        raise
    if mode == "passive" and not _hand_over(inbox_id, out.replies):
        deliver_replies(inbox_id, msg, out.replies, None, must_push=True)
        mode = "pushed"
    elif mode != "none":
        metrics.REPLIES.labels(mode).inc()
    outbox.queue_send(ids)
    return "done"


def handle_in_web(inbox_id: int, msg: Message, passive_until: float) -> list[str] | None:
    """Handle a message the web process stored already claimed (bot/inbox.py `accept(claim=True)`),
    in the request's thread: no Redis lane, no worker, no reply key. Returns the replies to
    answer passively, or None (answer `success`; anything to say was pushed or is left to
    the worker).

    Exactly once, as in `process_inbox`: the outcome is written only while attempt 1's
    claim holds (`_FINISH_INBOX`); a row the sweeper gave to a worker (this process too
    slow or dead) is the worker's. A plain question's handling writes nothing but the
    outcome, so that UPDATE goes through the process's group commit; a handler that
    wrote (a ticket, an outbox row) commits its session with the outcome in it. If
    handling fails, or the outcome cannot be written, the row goes to the worker lane
    marked `failed` with replies by push: nobody waits on a reply key for it.
    `passive_until` (time.monotonic()): replies ready later than this are pushed."""
    import time

    payload = msg.to_json()
    try:
        s = new_session()
        try:
            now = clock.now()
            out = dispatch.handle(Context(session=s, now=now), msg)
            ids = [r.id for r in (outbox.add(s, p, now) for p in out.pushes) if r is not None]
            mode = "none"
            if out.replies:
                mode = "passive" if time.monotonic() < passive_until else "pushed"
                if mode == "pushed":
                    ids += _push_replies(s, inbox_id, msg, out.replies)
            finish = {"b_id": inbox_id, "b_attempt": 1, "state": "done", "handled_at": now,
                      "replies": list(out.replies), "reply_mode": mode, "payload": {**payload, "role": msg.role}}
            if wrote(s):  # the handler's own rows: one transaction with the outcome
                if s.connection().execute(_FINISH_INBOX, finish).rowcount != 1:
                    raise _ClaimLost(inbox_id)
                s.commit()
                done = True
            else:
                s.rollback()  # read only: nothing to keep; the outcome alone, grouped
                budget = max(0.2, passive_until - time.monotonic())
                done = group_commit.run_batched(FINISHES, finish, budget, get_settings().group_commit_ms)
                if not done:
                    raise _ClaimLost(inbox_id)
        finally:
            s.close()
    except _ClaimLost:
        log.warning("inbox %s: claim lapsed and was taken over; the web's attempt is dropped", inbox_id)
        return None
    except Exception as exc:
        if isinstance(exc, DBAPIError) and is_busy(exc):  # expected under a locked database: no traceback
            log.warning("inbox %s: database busy in the web process; the worker takes it", inbox_id)
        else:
            log.exception("handling inbox %s in the web process failed; the worker takes it", inbox_id)
        _to_worker(inbox_id, exc)
        return None
    if mode == "passive" and time.monotonic() >= passive_until:
        # The outcome became durable after the platform stopped waiting (a locked
        # database): a passive answer now would reach nobody, so the replies are pushed.
        try:
            with session_scope() as s:
                ids += _push_replies(s, inbox_id, msg, out.replies)
                s.execute(update(InboxMessage).where(InboxMessage.id == inbox_id).values(reply_mode="pushed"))
            mode = "pushed"
        except Exception as exc:
            log.error("inbox %s: late passive replies could not be pushed (%s)", inbox_id, type(exc).__name__)
    if mode != "none":
        metrics.REPLIES.labels(mode).inc()
    outbox.queue_send(ids)
    return list(out.replies) if mode == "passive" else None


def _to_worker(inbox_id: int, exc: BaseException) -> None:
    """The web could not finish a row it claimed: mark it failed (replies by push) and put it on
    the lane; the worker's claim takes `failed` rows. Best effort: if even that fails, the
    claim's lease lapses and the sweeper re-queues the row."""
    try:
        with session_scope() as s:
            s.execute(update(InboxMessage).where(InboxMessage.id == inbox_id, InboxMessage.state == "handling",
                                                 InboxMessage.attempts == 1).values(
                state="failed", error=f"{type(exc).__name__}: {exc}"[:2000], handled_at=clock.now(),
                reply_mode="push"))
    except Exception as mark_exc:
        log.warning("inbox %s: could not hand over to the worker (%s); the sweeper will", inbox_id,
                    type(mark_exc).__name__)
        return
    try:
        get_redis().lpush(keys.INBOUND_LANE, inbox_id)
    except Exception as exc:  # the row is `failed`: the sweeper retries it (RETRY_FAILED)
        log.warning("inbox %s: could not queue for the worker (%s); the sweeper will", inbox_id, exc)


def _claim(inbox_id: int):
    with session_scope() as s:
        # Core statements on the session's connection, not loaded objects or ORM-enabled
        # statements (about 0.6 ms less a message): this runs while the sender waits.
        conn = s.connection()
        now = clock.now()
        claimed = conn.execute(_CLAIM_INBOX, {"b_id": inbox_id, "b_now": now}).first()
        if claimed is None:
            return None
        msg = Message.from_json(claimed[0])
        if msg.channel == "mp":  # the owner wrote: the 48 h customer-service window starts again
            conn.execute(_TOUCH_OWNER, {"b_openid": msg.sender, "last_inbound_at": now})
        return tuple(claimed)


def _handle(inbox_id: int, attempt: int, payload: dict, created_at, reply_mode):
    msg = Message.from_json(payload)  # fresh each try: a handler may change it
    with session_scope() as s:
        conn = s.connection()
        now = clock.now()
        out = dispatch.handle(Context(session=s, now=now), msg)
        ids = [r.id for r in (outbox.add(s, p, now) for p in out.pushes) if r is not None]
        mode = "none"
        if out.replies:
            passive = reply_mode != "push" and _claim_passive(inbox_id, msg, created_at)
            mode = "passive" if passive else "pushed"
            if mode == "pushed":
                ids += _push_replies(s, inbox_id, msg, out.replies)
        done = conn.execute(_FINISH_INBOX, {"b_id": inbox_id, "b_attempt": attempt, "state": "done",
                                            "handled_at": now, "replies": list(out.replies), "reply_mode": mode,
                                            "payload": {**payload, "role": msg.role}})
        if done.rowcount != 1:
            raise _ClaimLost(inbox_id)  # rolls back everything this attempt wrote
    return out, ids, mode, msg


def _mark_failed(inbox_id: int, attempt: int, exc: BaseException) -> None:
    with session_scope() as s:
        # handled_at = when this attempt ended: the sweeper retries a failed row later
        # (a locked database, a lost connection), up to MAX_INBOX_ATTEMPTS.
        s.execute(update(InboxMessage).where(InboxMessage.id == inbox_id, InboxMessage.state == "handling",
                                             InboxMessage.attempts == attempt).values(
            state="failed", error=f"{type(exc).__name__}: {exc}"[:2000], handled_at=clock.now()))


def _claim_passive(inbox_id: int, msg: Message, created_at) -> bool:
    """Win the race against the web request's deadline (see inbox.wait_for_reply)."""
    if msg.channel not in ("mp", "wecom") or created_at is None or clock.now() - created_at >= PASSIVE_GRACE:
        return False
    try:
        return bool(get_redis().set(keys.reply_claim(inbox_id), "worker", nx=True, ex=3600))
    except Exception as exc:
        log.warning("passive claim for inbox %s failed (%s); pushing", inbox_id, exc)
        return False


def _hand_over(inbox_id: int, replies: list[str]) -> bool:
    """Give the waiting web request its replies (after the commit, so they are recorded)."""
    try:
        key = keys.reply_list(inbox_id)
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
    return send_one(outbox_id)
