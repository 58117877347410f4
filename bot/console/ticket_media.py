"""Console: the photos and locations owners sent with a ticket, shown on the
ticket page (`_ticket_media.html`) and served from the database."""
from __future__ import annotations

from flask import Blueprint, Response, abort, g
from sqlalchemy import select

from bot.console.views import page
from store.models import TicketMedia

bp = Blueprint("ticket_media", __name__, url_prefix="/console/tickets")


@bp.app_template_global("ticket_media_for")
def ticket_media_for(ticket_id: int) -> list:
    """The ticket's photos and locations (without their bytes), oldest first."""
    if g.get("db") is None:
        return []
    return list(g.db.scalars(select(TicketMedia).where(TicketMedia.ticket_id == ticket_id).order_by(TicketMedia.id)))


@bp.get("/<int:ticket_id>/media/<int:media_id>")
@page("staff")
def media(ticket_id: int, media_id: int):
    row = g.db.get(TicketMedia, media_id)
    if row is None or row.ticket_id != ticket_id or row.state != "fetched" or not row.content:
        abort(404)
    return Response(row.content, mimetype=row.content_type or "application/octet-stream",
                    headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"})
