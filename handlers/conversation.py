"""Multi-turn state: one open exchange per sender and chat, with an expiry."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from store.models import Conversation


def _chat_key(chat: str, group_id: str | None) -> str:
    return f"{chat}:{group_id}" if group_id else chat


# Asked for every text message: built once, not per call. A Core statement on the session's
# connection (same transaction): nearly every message has no open exchange, and an ORM
# select costs its compile state and loading even when it finds nothing (~0.15 ms). The
# object is loaded only for a row that is there. Not cached across messages: the worker
# processes start and end exchanges too, and telling the web process so would cost the
# round trip the cache would save.
_T = Conversation.__table__
_OPEN_EXCHANGE = select(_T.c.id).where(_T.c.sender == bindparam("sender"), _T.c.chat == bindparam("chat"))


def get(session: Session, sender: str, chat: str, now: datetime, group_id: str | None = None) -> Conversation | None:
    if session.new or session.dirty or session.deleted:
        session.flush()  # what the ORM select's autoflush did: this session's own changes count
    conv_id = session.connection().execute(_OPEN_EXCHANGE, {"sender": sender, "chat": _chat_key(chat, group_id)}
                                           ).scalar()
    conv = session.get(Conversation, conv_id) if conv_id is not None else None
    if conv and conv.expires_at <= now:
        session.delete(conv)
        session.flush()
        return None
    return conv


def start(session: Session, sender: str, chat: str, handler: str, state: dict, now: datetime,
          ttl: timedelta = timedelta(minutes=30), group_id: str | None = None) -> Conversation:
    """Start (or replace) the sender's open exchange."""
    end(session, sender, chat, group_id)
    conv = Conversation(sender=sender, chat=_chat_key(chat, group_id), handler=handler,
                        state=state, expires_at=now + ttl)
    session.add(conv)
    session.flush()
    return conv


def update(session: Session, conv: Conversation, state: dict, now: datetime,
           ttl: timedelta = timedelta(minutes=30)) -> None:
    conv.state = dict(state)  # a new object so SQLAlchemy sees the change
    conv.expires_at = now + ttl
    session.flush()


def end(session: Session, sender: str, chat: str, group_id: str | None = None) -> None:
    session.execute(delete(Conversation).where(Conversation.sender == sender,
                                               Conversation.chat == _chat_key(chat, group_id)))
