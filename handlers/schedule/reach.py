"""How an owner is reached on the Official Account now (PLATFORM.md): a customer-service
message only within 48 h of the owner's last message (schedule.yaml `campaign.window_hours`,
with ten minutes to spare), outside it a template message. The campaigns (bot/campaigns.py)
and the calendar obligations (handlers/obligations.py) plan their messages with it."""
from __future__ import annotations

from datetime import datetime, timedelta

from handlers.schedule.config import get_schedule
from handlers.schedule.timing import local
from store.models import Owner


def plan_owner(owner: Owner, text: str, now: datetime, template_id: str | None) -> tuple[str, str, str, dict] | None:
    """(channel, kind, address, payload) for one owner, or None when unreachable."""
    if not owner.openid:
        return None
    hours = get_schedule().campaign["window_hours"]
    if owner.last_inbound_at and now - owner.last_inbound_at < timedelta(hours=hours) - timedelta(minutes=10):
        return "mp", "text", owner.openid, {"content": text}
    tid = template_id or get_schedule().campaign.get("template_id") or "notice"
    return "mp", "template", owner.openid, {
        "template_id": tid,
        "data": {"first": {"value": text[:200]}, "keyword1": {"value": "物业通知"},
                 "keyword2": {"value": local(now).strftime("%Y-%m-%d %H:%M")}, "remark": {"value": text}}}
