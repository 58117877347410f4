"""Button clicks on ticket cards (WeCom template_card_event, EventKey
"ticket:<action>:T<id>"). The click's ResponseCode updates the card for
everyone who got it; the clicker also gets a short text saying what happened
(e.g. who already owns the ticket)."""
from __future__ import annotations

from handlers import privacy
from handlers.message import Context, Message, Outcome, Push
from handlers.tickets import core
from handlers.tickets.capability import capability

# (session, ticket number, clicker, now, response_code, task_id) -> core.Result
ACTIONS = {
    "accept": lambda s, n, u, now, rc, task: core.accept(s, n, u, now, rc, task),
    "onsite": lambda s, n, u, now, rc, task: core.on_site(s, n, u, now, rc),
    "done": lambda s, n, u, now, rc, task: core.complete(s, n, u, now, "", rc, task),
    "transfer": lambda s, n, u, now, rc, task: core.transfer(s, n, u, now, None, rc),
    "callback": lambda s, n, u, now, rc, task: core.called_back(s, n, u, now, "", rc, task),
    "takeover": lambda s, n, u, now, rc, task: core.take_over(s, n, u, now, rc),
}


@capability.card("ticket:")
def on_ticket_click(ctx: Context, msg: Message, key: str) -> Outcome:
    parts = key.split(":")
    action = parts[1] if len(parts) > 1 else ""
    n = core.parse_number(parts[2]) if len(parts) > 2 else None
    fn = ACTIONS.get(action)
    if fn is None or n is None or msg.role != "staff":
        return Outcome(intent="event")
    res = fn(ctx.session, n, msg.sender, ctx.now, msg.data.get("ResponseCode") or None,
             msg.data.get("TaskId") or None)
    out = Outcome(pushes=list(res.pushes), intent="command")
    # A click has no chat reply of its own (the web answer is empty); the
    # message goes to the clicker's app chat.
    out.replies.append(res.message)
    return out


def media_notice(session, ticket, row) -> list:
    """The staff handling the ticket hear that a photo (or location) came, with a link
    to the ticket page where it is shown."""
    import os

    people = [ticket.assignee] if ticket.assignee else list(ticket.notified or [])
    if not people:
        return []  # not dispatched yet (home being checked): the dispatch card will show it
    base = (os.environ.get("GUANJIA_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
    what = {"image": "照片", "voice": "语音"}.get(row.kind, "位置")
    desc = f"{ticket.room or ''} {privacy.excerpt(ticket.content, 60)}" + (f"\n位置：{row.label}" if row.kind == "location" and row.label else "")
    return [Push(channel="wecom", recipient="|".join(people), kind="textcard",
                 payload={"title": f"工单{ticket.number} 业主发来{what}", "description": desc,
                          "url": f"{base}/console/tickets/{ticket.id}#media-{row.id}", "btntxt": f"查看{what}"},
                 dedup_key=f"ticket:{ticket.id}:media:{row.id}", priority=3, source=f"ticket:{ticket.id}")]
