"""Photos and locations owners send about a ticket (issue 14).

An image (or a location) in the OA chat attaches to the owner's open ticket;
with several open, the owner is asked which; with none, the owner is asked what
happened and the ticket registered from the answer carries it. The staff
holding the ticket get a card saying a photo came, with a link; the photo is
fetched through the platform's media API after the message is handled (media
ids expire after 3 days) and kept with the ticket (`ticket_media`).
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session

from ground import keys, ports
from handlers import conversation
from handlers.identity import find_owner
from handlers.message import Context, Message, Outcome, Push
from handlers.tickets import card, core
from handlers.tickets.capability import capability
from store.models import Ticket, TicketMedia

log = logging.getLogger(__name__)
WHICH_CONV = "ticket_attach"
WHICH_TTL = timedelta(minutes=30)
KIND_WORDS = {"image": "照片", "location": "位置", "voice": "语音"}


def info_of(msg: Message) -> dict:
    """What to keep of an image / location message (JSON-safe, for a conversation's state)."""
    d = msg.data or {}

    def num(key: str) -> float | None:
        try:
            return float(d[key])
        except (KeyError, TypeError, ValueError):
            return None

    return {"kind": msg.kind, "channel": msg.channel, "sender": msg.sender, "media_id": d.get("MediaId"),
            "pic_url": d.get("PicUrl"), "label": d.get("Label"), "lat": num("Location_X"), "lng": num("Location_Y")}


def open_tickets(session: Session, msg: Message) -> list[Ticket]:
    owner = find_owner(session, msg)
    cond = [Ticket.sender == msg.sender] + ([Ticket.owner_id == owner.id] if owner else [])
    return list(session.scalars(select(Ticket).where(or_(*cond), Ticket.state.in_(core.OPEN_STATES))
                                .order_by(Ticket.id.desc()).limit(5)))


def attach(session: Session, ticket: Ticket, info: dict, now: datetime) -> tuple[TicketMedia, list[Push]]:
    fetch = info["kind"] != "location" and bool(info.get("media_id"))
    row = TicketMedia(ticket_id=ticket.id, kind=info["kind"], channel=info["channel"], sender=info["sender"], at=now,
                      media_id=info.get("media_id"), pic_url=info.get("pic_url"),
                      state="pending" if fetch else "none", latitude=info.get("lat"), longitude=info.get("lng"),
                      label=(info.get("label") or None))
    session.add(row)
    session.flush()
    action = {"image": "photo_added", "voice": "voice_added"}.get(info["kind"], "location_added")
    core.record(session, ticket, info["sender"], action, now,
                media=row.id, **({"label": row.label} if row.label else {}))
    if fetch:
        _fetch_after_commit(session, row.id)
    return row, card.media_notice(session, ticket, row)


def _fetch_after_commit(session: Session, row_id: int) -> None:
    """Fetch the file once this message's transaction has committed (a worker
    could not see the row before), outside the handler: handlers speak no HTTP."""
    def enqueue(_s) -> None:
        try:
            ports.jobs().enqueue("outbound", "fetch_ticket_media", row_id, job_id=keys.media_job_id(row_id))
        except Exception as exc:  # Redis down: `guanjia` can fetch pending rows later
            log.warning("could not queue the media fetch of ticket_media %s (%s)", row_id, exc)

    event.listen(session, "after_commit", enqueue, once=True)


def _ack(ticket: Ticket, row: TicketMedia) -> str:
    what = KIND_WORDS.get(row.kind, "附件")
    extra = f"（{row.label}）" if row.kind == "location" and row.label else ""
    return f"收到{what}{extra}，已附到工单{ticket.number}，处理人员可以看到。"


def _on_media(ctx: Context, msg: Message, _route) -> Outcome | None:
    if msg.chat != "private":
        return None  # group photos are the groups capability's
    info = info_of(msg)
    what = KIND_WORDS[msg.kind]
    conv = conversation.get(ctx.session, msg.sender, msg.chat, ctx.now, msg.group_id)
    if conv is not None and conv.handler == core.DETAILS_CONV:
        # Asked "what happened?" and a photo came first: keep it for the ticket to come.
        state = dict(conv.state)
        state["media"] = list(state.get("media") or []) + [info]
        conversation.update(ctx.session, conv, state, ctx.now, ttl=core.DETAILS_TTL)
        return Outcome(replies=[f"收到{what}。请再用文字简单说一下发生了什么，我马上为您登记，{what}会一起附上。"],
                       intent="complaint")
    rows = open_tickets(ctx.session, msg)
    if len(rows) == 1:
        row, pushes = attach(ctx.session, rows[0], info, ctx.now)
        return Outcome(replies=[_ack(rows[0], row)], pushes=pushes, intent="complaint")
    if len(rows) > 1:
        conversation.start(ctx.session, msg.sender, msg.chat, WHICH_CONV, {"media": info, "ids": [t.id for t in rows]},
                           ctx.now, ttl=WHICH_TTL)
        lines = "\n".join(f"{t.number} {t.content[:20]}" for t in rows)
        return Outcome(replies=[f"收到{what}。您有{len(rows)}个处理中的工单，这是关于哪一个的？回复编号（例如 {rows[0].number}）：\n{lines}"],
                       intent="complaint")
    # No open ticket: ask what happened; the answer registers one with this attached.
    conversation.start(ctx.session, msg.sender, msg.chat, core.DETAILS_CONV, {"opener": f"（{what}）", "media": [info]},
                       ctx.now, ttl=core.DETAILS_TTL)
    return Outcome(replies=[f"收到{what}。请简单说一下是什么问题（例如「楼道灯坏了」），我马上为您登记工单，{what}会一起附上。"],
                   intent="complaint")


capability.event("__image__")(_on_media)
capability.event("__location__")(_on_media)


@capability.event("__voice__")
def on_voice(ctx: Context, msg: Message, _route) -> Outcome | None:
    """A voice note WeChat could not transcribe (with a transcript it arrives as
    text): kept with the owner's one open ticket; otherwise the usual ask for text."""
    rows = open_tickets(ctx.session, msg) if msg.chat == "private" and (msg.data or {}).get("MediaId") else []
    if len(rows) != 1:
        return None
    row, pushes = attach(ctx.session, rows[0], info_of(msg), ctx.now)
    return Outcome(replies=[f"收到语音，已附到工单{rows[0].number}。方便的话也请用文字简单说明，处理会更快。"],
                   pushes=pushes, intent="complaint")


@capability.conversation(WHICH_CONV)
def on_which(ctx: Context, msg: Message, conv) -> Outcome | None:
    text = (msg.text or "").strip()
    ids = list(conv.state.get("ids") or [])
    m = re.match(r"^[TtＴｔ]?\s*(\d+)$", text) or re.match(r"^第(\d)个$", text)
    conversation.end(ctx.session, msg.sender, msg.chat)
    if not m:
        return None  # something else: the router has it (the photo is dropped, the owner moved on)
    k = int(m.group(1))
    tid = k if k in ids else (ids[k - 1] if text.startswith("第") and 0 < k <= len(ids) else None)
    ticket = core.get_ticket(ctx.session, tid) if tid else None
    if ticket is None:
        return Outcome(replies=["没有找到这个工单，照片未附上。请重新发送照片。"], intent="complaint")
    row, pushes = attach(ctx.session, ticket, conv.state["media"], ctx.now)
    return Outcome(replies=[_ack(ticket, row)], pushes=pushes, intent="complaint")


def attach_pending(session: Session, ticket: Ticket, infos: list[dict], now: datetime) -> list[Push]:
    """Photos sent before the details (kept in the intake exchange) join the new ticket."""
    pushes: list[Push] = []
    for info in infos or []:
        _row, p = attach(session, ticket, info, now)
        pushes += p
    return pushes
