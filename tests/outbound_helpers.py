"""Small helpers shared by the tests/test_outbound_*.py modules."""
from __future__ import annotations

from handlers.message import Push


def add_push(push: Push) -> int:
    """Record a push in the outbox (committed) and return its row id."""
    from bot.outbound import outbox
    from store.db import session_scope

    with session_scope() as s:
        row = outbox.add(s, push)
        assert row is not None
        return row.id


def row(outbox_id: int):
    from store.db import session_scope
    from store.models import OutboxMessage

    with session_scope() as s:
        r = s.get(OutboxMessage, outbox_id)
        s.expunge(r)
        return r


def rows(**where):
    from sqlalchemy import select

    from store.db import session_scope
    from store.models import OutboxMessage

    with session_scope() as s:
        q = select(OutboxMessage).order_by(OutboxMessage.id)
        for k, v in where.items():
            q = q.where(getattr(OutboxMessage, k) == v)
        out = list(s.scalars(q))
        for r in out:
            s.expunge(r)
        return out


def wecom_text(user: str, content: str = "你好", **kw) -> Push:
    return Push(channel="wecom", recipient=user, kind="text", payload={"content": content}, **kw)


def mp_text(openid: str, content: str = "您好", **kw) -> Push:
    return Push(channel="mp", recipient=openid, kind="text", payload={"content": content}, **kw)
