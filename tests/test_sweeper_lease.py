"""Issue 13, item 3: a message whose worker died is handled again within 30 s.

A claim is a lease (inbox.claimed_at). The worker here dies right after its
claim committed (the first step of bot.tasks.process_inbox, then nothing); the
sweeper, run as the scheduler runs it, re-queues the row once the lease lapsed,
and a live worker handles it, once. A worker that was only slow and finishes
after the take-over writes nothing.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests import platform as P


def _row(inbox_id: int):
    from store.db import session_scope
    from store.models import InboxMessage

    with session_scope() as s:
        r = s.get(InboxMessage, inbox_id)
        return r.state, r.attempts


def _stored(app_client, openid: str, msg_id: int) -> int:
    from ground.keys import INBOUND_LANE
    from bot.queues import get_redis
    from store.db import session_scope
    from store.models import InboxMessage

    q, body = P.mp_text_request(openid, "你好", msg_id)
    assert app_client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    with session_scope() as s:
        inbox_id = s.scalars(select(InboxMessage.id).where(InboxMessage.sender == openid)).one()
    assert int(get_redis().rpop(INBOUND_LANE)) == inbox_id  # a worker popped it...
    return inbox_id


def test_a_dead_workers_message_is_requeued_within_30_s(app_client, fake_platform, frozen_clock):
    from bot.sweeper import sweep
    from bot.tasks import _claim

    inbox_id = _stored(app_client, "o_orphan", 8101)
    assert _claim(inbox_id) is not None  # ...claimed it, and died
    assert _row(inbox_id) == ("handling", 1)
    frozen_clock.advance(seconds=10)
    assert sweep()["inbox"] == 0  # a live worker may still be on it
    frozen_clock.advance(seconds=15)  # 25 s after the claim: the sweeper's next round (every 5 s)
    assert sweep()["inbox"] == 1
    assert P.drain_queues() >= 1
    assert _row(inbox_id) == ("done", 2)
    assert [c["json"]["touser"] for c in fake_platform.sent("/cgi-bin/message/custom/send")] == ["o_orphan"]
    frozen_clock.advance(minutes=5)
    assert sweep()["inbox"] == 0  # done stays done


def test_a_lost_queued_id_is_requeued_but_a_backlog_is_left_alone(app_client, fake_platform, frozen_clock):
    from bot.inbox import enqueue
    from ground.keys import INBOUND_LANE
    from bot.queues import get_redis
    from bot.sweeper import sweep

    lost = _stored(app_client, "o_lost", 8102)  # popped, then the worker died before claiming
    q, body = P.mp_text_request("o_waiting", "你好", 8103)
    assert app_client.post("/wechat/mp", query_string=q, data=body).status_code == 200  # still on the lane
    frozen_clock.advance(seconds=25)
    assert sweep()["inbox"] == 1
    assert get_redis().llen(INBOUND_LANE) == 2  # the lost one is back; the waiting one not doubled
    P.drain_queues()
    assert _row(lost) == ("done", 1)
    assert enqueue(lost) and P.drain_queues(["inbound"]) == 1 and _row(lost) == ("done", 1)


def test_a_slow_worker_finishing_after_the_take_over_writes_nothing(app_client, fake_platform, frozen_clock):
    from bot.sweeper import sweep
    from bot.tasks import _ClaimLost, _claim, _handle

    inbox_id = _stored(app_client, "o_slow", 8104)
    payload, created_at, reply_mode, attempt = _claim(inbox_id)  # worker A claims, then stalls
    frozen_clock.advance(seconds=25)
    assert sweep()["inbox"] == 1
    P.drain_queues()  # worker B handles it
    assert _row(inbox_id) == ("done", 2)
    try:  # A wakes up and finishes its attempt
        _handle(inbox_id, attempt, payload, created_at, reply_mode)
        raise AssertionError("the stale attempt was written")
    except _ClaimLost:
        pass
    P.drain_queues()
    assert _row(inbox_id) == ("done", 2)
    assert len(fake_platform.sent("/cgi-bin/message/custom/send")) == 1
