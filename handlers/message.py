"""The shapes that cross the edge: a normalized inbound message, and the outcome
of handling it (replies to the sender, pushes to anyone else)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

CHATS = ("private", "vip", "building", "staff")
ROLES = ("owner", "admin", "staff")


@dataclass
class Message:
    """One inbound message or event, whatever platform it came from.

    channel: mp (Official Account), wecom (self-built app), archive (customer
    group via message archive), cli (guanjia chat).
    chat: private (OA 1:1), staff (WeCom app 1:1), vip / building (groups).
    """

    channel: str
    sender: str
    chat: str = "private"
    kind: str = "text"  # text / image / voice / location / event / card_click / ...
    text: str = ""
    msg_id: str | None = None
    created_at: int = 0  # platform CreateTime (epoch seconds)
    group_id: str | None = None  # chat_id of the customer group
    role: str | None = None  # filled by the worker from the store when known
    event: str | None = None  # subscribe / template_card_event / change_external_chat / msgaudit_notify ...
    data: dict[str, Any] = field(default_factory=dict)  # event fields (EventKey, TaskId, UpdateDetail ...)
    to: str | None = None  # the account the message was sent to (for passive replies)
    agent_id: str | None = None

    def dedup_key(self) -> str:
        """PLATFORM.md: MsgId for messages, FromUserName + CreateTime for events."""
        if self.msg_id:
            return f"m:{self.msg_id}"
        extra = self.data.get("TaskId") or self.data.get("ResponseCode") or self.data.get("ChatId") or ""
        if self.data.get("EventKey"):  # two buttons of one card tapped within a second are two clicks
            extra = f"{extra}:{self.data['EventKey']}"
        return f"e:{self.sender}:{self.created_at}:{self.event or self.kind}:{extra}"[:128]

    def to_json(self) -> dict:
        # Not dataclasses.asdict: it deep-copies every value (~80 us, on the webhook's path).
        # The result is serialized at once, so a shallow copy of `data` is enough.
        out = {f.name: getattr(self, f.name) for f in _MESSAGE_FIELDS}
        out["data"] = dict(self.data)
        return out

    @classmethod
    def from_json(cls, data: dict) -> "Message":
        return cls(**data)


_MESSAGE_FIELDS = fields(Message)


@dataclass
class Push:
    """A message to send through the outbox (to anyone, on any channel).

    kind: text / markdown / textcard / template_card / update_card / template
    (OA template message) / appchat / group_task (a ready-to-send text for the
    staff owner of a customer group, because no bot can post there).
    """

    channel: str  # mp / wecom
    recipient: str
    kind: str
    payload: dict
    dedup_key: str | None = None
    priority: int = 5
    source: str | None = None


@dataclass
class Outcome:
    """What handling a message decided. `replies` go to the sender (passively
    when fast enough); `pushes` go through the outbox."""

    replies: list[str] = field(default_factory=list)
    pushes: list[Push] = field(default_factory=list)
    intent: str | None = None
    route: dict | None = None

    def reply(self, text: str) -> "Outcome":
        self.replies.append(text)
        return self

    def push(self, push: Push) -> "Outcome":
        self.pushes.append(push)
        return self


@dataclass
class Context:
    """What a handler may use: the database session and the current time."""

    session: Any  # sqlalchemy.orm.Session
    now: datetime
