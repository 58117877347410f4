"""Fetch an owner's photo through the platform's media API (cgi-bin/media/get)
and keep it with the ticket (`ticket_media.content`). An rq job on the
outbound queue, queued by handlers.tickets.attachments once the message's
transaction has committed; media ids expire after 3 days, so it runs at once.

A row still `pending` later (Redis was down when the job was to be queued, the
job was lost, or the platform timed out) is queued again by the sweeper
(`retry_pending`, bot/sweeper.py), at most once a minute per row (five after a
failed try), until it is fetched, refused, or its media id has expired."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.outbound.clients import ApiError, NotConfigured, PlatformError, get_wechat_client, get_wecom_client
from bot.queues import get_redis
from ground import clock
from handlers.tickets import core
from store.db import session_scope
from store.models import TicketMedia

log = logging.getLogger(__name__)

MEDIA_ID_LIFE = timedelta(days=3)  # PLATFORM.md: temporary media ids expire after 3 days
RETRY_AFTER = timedelta(seconds=30)  # the job queued after commit normally has it by then
RETRY_EVERY_S, RETRY_AFTER_ERROR_S = 60, 300
RETRY_MARK = "guanjia:media_retry:{}"  # a Redis key per row: the next retry waits for it to lapse


def fetch_ticket_media(row_id: int) -> str:
    with session_scope() as s:
        row = s.get(TicketMedia, row_id)
        if row is None or row.state != "pending" or not row.media_id:
            return "nothing to fetch"
        try:
            client = get_wechat_client() if row.channel == "mp" else get_wecom_client()
            content, ctype = client.get_media(row.media_id)
        except NotConfigured as exc:
            row.state, row.error = "failed", f"channel not configured: {exc}"[:500]
        except ApiError as exc:  # e.g. 40007: the id expired or never existed; retrying will not help
            row.state, row.error = "failed", f"{exc.errcode} {exc.errmsg}"[:500]
        except PlatformError as exc:  # time-out, 5xx: stays pending, a later run tries again
            row.error = str(exc)[:500]
            log.warning("ticket_media %s: fetch failed (%s); still pending", row_id, type(exc).__name__)
            return "pending"
        else:
            row.content, row.content_type, row.size, row.state, row.error = content, ctype, len(content), "fetched", None
        ticket = core.get_ticket(s, row.ticket_id)
        if ticket is not None:
            core.record(s, ticket, "bot", "media_fetched" if row.state == "fetched" else "media_failed", clock.now(),
                        media=row.id, **({"error": row.error} if row.error else {}))
        return row.state


def queue_fetch(row_id: int) -> bool:
    """Queue the fetch of one row; False (logged) when Redis cannot take it."""
    try:
        from bot.queues import get_queue

        get_queue("outbound").enqueue(fetch_ticket_media, row_id, job_id=f"media-{row_id}")
        return True
    except Exception as exc:
        log.warning("could not queue the media fetch of ticket_media %s (%s)", row_id, type(exc).__name__)
        return False


def retry_pending(now: datetime | None = None, limit: int = 100) -> int:
    """Queue again every photo still waiting to be fetched; mark as failed (with a
    ticket event) the ones whose media id has expired. Returns how many were queued."""
    now = now or clock.now()
    with session_scope() as s:
        rows = list(s.scalars(select(TicketMedia).where(TicketMedia.state == "pending",
                                                        TicketMedia.at < now - RETRY_AFTER)
                              .order_by(TicketMedia.id).limit(limit)))
        due: list[tuple[int, bool]] = []
        for row in rows:
            if row.at < now - MEDIA_ID_LIFE:
                row.state = "failed"
                row.error = ((row.error + "; ") if row.error else "") + "media id expired before it could be fetched"
                ticket = core.get_ticket(s, row.ticket_id)
                if ticket is not None:
                    core.record(s, ticket, "bot", "media_failed", now, media=row.id, error="expired")
            else:
                due.append((row.id, bool(row.error)))
    try:
        r = get_redis()
        due = [(i, e) for i, e in due
               if r.set(RETRY_MARK.format(i), 1, nx=True, ex=RETRY_AFTER_ERROR_S if e else RETRY_EVERY_S)]
    except Exception:
        return 0  # Redis is still down: the next sweep tries again
    queued = sum(1 for i, _ in due if queue_fetch(i))
    if queued:
        log.info("media fetch: %d pending photo(s) queued again", queued)
    return queued
