"""Platform XML fields -> Message. Events wechatpy 1.8 does not know
(template_card_event, change_external_chat, msgaudit_notify) become typed
events here too."""
from __future__ import annotations

from bot.channels.common import Refusal, is_epoch, require
from handlers.message import Message

# Fields kept in Message.data for events, by event name; unknown events keep everything.
EVENT_FIELDS = {
    "template_card_event": ("EventKey", "TaskId", "CardType", "ResponseCode", "SelectedItems",
                            "SelectedItems.SelectedItem"),
    "change_external_chat": ("ChatId", "ChangeType", "UpdateDetail", "JoinScene", "QuitScene", "MemChangeCnt"),
    "msgaudit_notify": (),
}


def inbound_message(fields: dict[str, str], channel: str) -> Message:
    """A callback's message, refused when a field every message carries is missing (a text
    without MsgId could not be deduplicated)."""
    require(fields, "FromUserName", "MsgType", "CreateTime")
    msg = to_message(fields, channel)
    if msg.kind == "text" and not msg.msg_id:
        raise Refusal(400, "missing_field", "MsgId")
    return msg


def to_message(fields: dict[str, str], channel: str) -> Message:
    msg_type = (fields.get("MsgType") or "").lower()
    raw_created = fields.get("CreateTime", "")
    if raw_created and not is_epoch(raw_created):
        # A 5,000-digit CreateTime: int() refuses it (and a datetime could not hold it).
        raise Refusal(400, "bad_field", "CreateTime is not epoch seconds")
    created = int(raw_created) if raw_created else 0
    base = dict(channel=channel, sender=fields.get("FromUserName", ""), to=fields.get("ToUserName"),
                created_at=created, msg_id=fields.get("MsgId") or None, agent_id=fields.get("AgentID") or None,
                chat="staff" if channel == "wecom" else "private")
    if msg_type == "text":
        return Message(kind="text", text=fields.get("Content", ""), **base)
    if msg_type == "event":
        event = fields.get("Event", "")
        wanted = EVENT_FIELDS.get(event)
        data = {k: v for k, v in fields.items()
                if k not in ("ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "AgentID")
                and (wanted is None or not wanted or k in wanted or k.split(".")[0] in wanted)}
        if event == "change_external_chat" or event == "change_external_contact":
            base["group_id"] = fields.get("ChatId") or None
        return Message(kind="event", event=event, data=data, **base)
    # image: PicUrl, MediaId; voice: MediaId, Format, Recognition; location: Location_X
    # (latitude), Location_Y (longitude), Scale, Label (the address).
    data = {k: v for k, v in fields.items() if k in ("MediaId", "PicUrl", "Recognition", "Label", "Url", "Title",
                                                       "Format", "Location_X", "Location_Y", "Scale", "ThumbMediaId")}
    text = fields.get("Recognition", "")  # voice messages with recognition on carry text
    if msg_type == "voice" and text:
        return Message(kind="text", text=text, data=data, **base)
    return Message(kind=msg_type or "unknown", data=data, **base)
