"""Fetch an owner's photo through the platform's media API (cgi-bin/media/get)
and keep it with the ticket (`ticket_media.content`). An rq job on the
outbound queue, queued by handlers.tickets.attachments once the message's
transaction has committed; media ids expire after 3 days, so it runs at once."""
from __future__ import annotations

import logging

from ground import clock
from store.db import session_scope

log = logging.getLogger(__name__)


def fetch_ticket_media(row_id: int) -> str:
    from bot.outbound.clients import ApiError, NotConfigured, PlatformError, get_wechat_client, get_wecom_client
    from handlers.tickets import core
    from store.models import TicketMedia

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
