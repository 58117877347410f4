"""Rate limits: the sliding window itself, and the sender deferring (not dropping)
what would go over the platforms' per-member limits."""
from __future__ import annotations

import time
from datetime import timedelta

from tests.outbound_helpers import add_push, mp_text, row, wecom_text

SEND = "/cgi-bin/message/send"


def test_sliding_window_counts_and_waits(env):
    from bot.outbound.ratelimit import Limit, acquire
    from bot.queues import get_redis

    r = get_redis()
    lim = [Limit("t:a:m", 3, 60)]
    t0 = 1_000_000.0
    assert [acquire(lim, r, now=t0 + i) for i in range(3)] == [0.0, 0.0, 0.0]
    wait = acquire(lim, r, now=t0 + 10)
    assert 50 < wait <= 50.01  # the first send (t0) leaves the window at t0 + 60
    assert acquire(lim, r, now=t0 + 60.5) == 0.0  # sliding: one slot back
    assert acquire(lim, r, now=t0 + 60.8) > 0  # t0+1, t0+2 and t0+60.5 fill it again


def test_a_slot_counts_until_its_call_has_landed(env):
    """Fan-out pacing (issue 16): a call that lands late must not let a window of the
    platform's hold limit + 1. The slot is held while the call is in flight and then
    counts from when its answer came back, whatever the delay."""
    from bot.outbound.ratelimit import Limit, landed, take
    from bot.queues import get_redis

    r = get_redis()
    lim = [Limit("t:fan:m", 2, 10)]
    t0 = 3_000_000.0
    wait, a = take(lim, 30, r, now=t0)
    assert wait == 0.0 and a
    wait, b = take(lim, 30, r, now=t0 + 1)
    assert wait == 0.0 and b
    landed(lim, b, r, now=t0 + 1.1)
    wait, _ = take(lim, 30, r, now=t0 + 5)
    assert 6.0 < wait <= 6.2  # b counts from when it landed (t0 + 1.1), for 10 s
    wait, c = take(lim, 30, r, now=t0 + 11.5)
    assert c is not None
    # `a` is still in flight 11.6 s later (a stalled call): it still counts, and the
    # answer is "soon" (it lands any moment), not "never".
    wait, _ = take(lim, 30, r, now=t0 + 11.6)
    assert 0 < wait <= 0.05
    landed(lim, a, r, now=t0 + 12)  # it came back: the platform stamped it by t0 + 12
    wait, _ = take(lim, 30, r, now=t0 + 12.5)
    assert 9.4 < wait <= 9.6  # a counts from t0 + 12, not from when it was taken (t0)
    landed(lim, c, r, now=t0 + 13)
    assert take(lim, 30, r, now=t0 + 22.1)[1] is not None
    # A slot whose process died never lands: held for hold_s, then the window, then gone.
    lim2 = [Limit("t:fan2:m", 1, 10)]
    assert take(lim2, 5, r, now=t0)[1] is not None
    assert take(lim2, 5, r, now=t0 + 14)[1] is None
    assert take(lim2, 5, r, now=t0 + 15.1)[1] is not None


def test_all_or_nothing_across_keys(env):
    from bot.outbound.ratelimit import Limit, acquire
    from bot.queues import get_redis

    r = get_redis()
    t0 = 2_000_000.0
    member, app = Limit("t:u:m", 1, 60), Limit("t:app:m", 10, 60)
    assert acquire([member, app], r, now=t0) == 0.0
    assert acquire([member, app], r, now=t0 + 1) > 0
    # The refused call took no slot on the app key.
    assert r.zcard("guanjia:rl:t:app:m") == 1
    assert acquire([Limit("t:none", 0, 60)], r) == 0.0  # limit 0 = unlimited


def test_campaign_sized_throughput(env):
    """A 10,000-recipient campaign pays one Redis round trip per message."""
    from bot.outbound.ratelimit import acquire, wecom_message_limits

    started = time.perf_counter()
    for i in range(2000):
        assert acquire(wecom_message_limits([f"u{i}"])) == 0.0
    per_call = (time.perf_counter() - started) / 2000
    assert per_call < 0.005, per_call


def test_sender_defers_over_member_limit_without_breaching(outbound_env, fake_platform, monkeypatch):
    from ground.config import reset_settings
    from bot.outbound.sender import send_one

    monkeypatch.setenv("GUANJIA_WECOM_PER_MEMBER_PER_MINUTE", "3")
    monkeypatch.setenv("GUANJIA_RATE_INLINE_WAIT_S", "0")
    reset_settings()
    from bot.metrics import OUTBOUND

    deferred_before = OUTBOUND.labels("wecom", "deferred")._value.get()
    ids = [add_push(wecom_text("weixiu_laozhou", f"工单{i}")) for i in range(5)]
    results = [send_one(i) for i in ids]
    assert results == ["sent"] * 3 + ["deferred"] * 2
    assert OUTBOUND.labels("wecom", "deferred")._value.get() == deferred_before + 2
    late = row(ids[3])
    assert late.state == "queued" and late.attempts == 0  # deferral uses no attempt
    from ground import clock

    assert timedelta(seconds=50) < late.next_attempt_at - clock.now() < timedelta(seconds=70)
    assert send_one(ids[3]) == "not due"
    assert len(fake_platform.sent(SEND)) == 3
    assert fake_platform.stats()["breach_count"] == 0
    # Another member is not held up.
    assert send_one(add_push(wecom_text("weixiu_xiaoli"))) == "sent"


def test_short_wait_is_slept_inline(outbound_env, fake_platform, monkeypatch):
    """A wait shorter than GUANJIA_RATE_INLINE_WAIT_S is slept in the worker, then sent."""
    from ground.config import reset_settings
    from bot.outbound.ratelimit import acquire, wecom_message_limits
    from bot.outbound.sender import send_one

    monkeypatch.setenv("GUANJIA_WECOM_PER_MEMBER_PER_MINUTE", "1")
    reset_settings()
    # A send 59.6 s ago fills the member's minute: the slot frees in 0.4 s.
    assert acquire(wecom_message_limits(["baoan_dawei"]), now=time.time() - 59.6) == 0.0
    started = time.monotonic()
    assert send_one(add_push(wecom_text("baoan_dawei", "一"))) == "sent"
    assert 0.3 < time.monotonic() - started < 3


def test_mp_customer_service_quota_per_window(outbound_env, fake_platform, demo, monkeypatch):
    """5 customer-service messages per window opened by the owner's last message;
    a new message from the owner opens a new window."""
    from ground import clock
    from bot.outbound.sender import send_one
    from store.db import session_scope
    from store.models import Owner

    monkeypatch.setenv("GUANJIA_RATE_INLINE_WAIT_S", "0")

    def owner_writes(at):
        with session_scope() as s:
            s.query(Owner).filter(Owner.openid == "o_chen").one().last_inbound_at = at

    owner_writes(clock.now() - timedelta(hours=1))
    ids = [add_push(mp_text("o_chen", f"回复{i}")) for i in range(6)]
    assert [send_one(i) for i in ids] == ["sent"] * 5 + ["deferred"]
    owner_writes(clock.now())
    with session_scope() as s:  # due again (as the sweeper would find it an hour later)
        from store.models import OutboxMessage

        s.get(OutboxMessage, ids[5]).next_attempt_at = clock.now()
    assert send_one(ids[5]) == "sent"


def test_fake_platform_drops_and_counts_breaches(outbound_env, fake_platform):
    """Without our limiter, the platform drops silently beyond the per-member limit."""
    from bot.outbound.clients import get_wecom_client

    fake_platform.config(per_member_per_minute=2)
    client = get_wecom_client()
    answers = [client.send_text("kefu_ajie", f"x{i}") for i in range(3)]
    assert all(a["errcode"] == 0 for a in answers)  # silently
    stats = fake_platform.stats()
    assert stats["breach_count"] == 1 and stats["breaches"][0]["userid"] == "kefu_ajie"
    assert len(fake_platform.delivered(SEND)) == 2 and fake_platform.sent(SEND)[2]["dropped"] == "rate_limit"
