"""Sliding-window rate limits in Redis, shared by every worker.

A sliding log (a sorted set of send times per key) rather than GCRA: the
platforms count "30 in any minute" per member, and GCRA with a burst of 30
lets through up to 60 in some minute. One Lua call checks and takes all the
keys of a send atomically, so a 10,000-recipient campaign costs one round trip
per message.

    wait = acquire(wecom_message_limits(["zhangsan"]))
    if wait: defer the send by `wait` seconds (nothing was taken)
    else:    a slot was taken on every key; send now

A fan-out that must never exceed the platform's count in any window uses
`take` + `landed` instead: the slot is held as "in flight" (it counts, and keeps
counting) until the call has come back, and then it counts from the moment the
answer arrived. The platform stamps a call somewhere between our sending it and
our reading its answer, so a window of the platform's can never hold more calls
than one of ours, whatever the delay on a busy machine (a fixed margin only hides
delays shorter than itself).
"""
from __future__ import annotations

import time
import uuid
from typing import Iterable, NamedTuple, Sequence

from redis import Redis

from bot.queues import get_redis
from ground import keys
from ground.config import Settings, get_settings
from ground.limits import CS_WINDOW


# KEYS: the windows. ARGV: now_ms, a unique member id, then limit and window_ms per key.
# Returns 0 after taking a slot on every key, else the ms until all keys allow one.
_ACQUIRE = """
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local first = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    local w = tonumber(first[2]) + window - now + 1
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]))
end
return 0
"""


# take(): as _ACQUIRE, but the slot is scored ARGV[3] ms in the future (the longest a call
# can be in flight: a dead process's slot lapses after that plus the window), and a key
# whose blocking slot is still in flight answers "soon" (ARGV[4] ms): it lands any moment.
_TAKE = """
local now = tonumber(ARGV[1])
local hold = tonumber(ARGV[3])
local soon = tonumber(ARGV[4])
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 + 2 * i])
  local window = tonumber(ARGV[4 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (now - window))
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local first = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    local at = tonumber(first[2])
    local w = at + window - now + 1
    if at > now then w = soon end
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + hold, ARGV[2])
  redis.call('PEXPIRE', key, hold + tonumber(ARGV[4 + 2 * i]))
end
return 0
"""

# landed(): the call came back at ARGV[1]; its slot counts from then (XX: a slot that
# already lapsed is not brought back).
_LANDED = """
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', tonumber(ARGV[1]), ARGV[2])
end
return 0
"""


class Limit(NamedTuple):
    key: str  # the limit's name: its Redis key is keys.rate_limit(name)
    limit: int  # sends allowed per window; <= 0 means no limit
    window_s: float


_script = None


def _acquire_script(r: Redis):
    # One Script object (it only caches the SHA); the client is passed per call,
    # so a new Redis connection (tests, a changed REDIS_URL) is always the one used.
    global _script
    if _script is None:
        _script = r.register_script(_ACQUIRE)
    return _script


def acquire(limits: Sequence[Limit], redis: Redis | None = None, now: float | None = None) -> float:
    """Take one slot on every limit, or none: returns 0.0 when taken, else seconds to wait.

    Physical time (not ground.clock): the platforms count real seconds.
    """
    active = [lim for lim in limits if lim.limit > 0]
    if not active:
        return 0.0
    if redis is None:
        redis = get_redis()
    now_ms = int((now if now is not None else time.time()) * 1000)
    args: list = [now_ms, uuid.uuid4().hex]
    for lim in active:
        args += [lim.limit, int(lim.window_s * 1000)]
    wait_ms = _acquire_script(redis)(keys=[keys.rate_limit(lim.key) for lim in active], args=args, client=redis)
    return float(wait_ms) / 1000.0


_take_script = None
_landed_script = None


def take(limits: Sequence[Limit], hold_s: float, redis: Redis | None = None,
         now: float | None = None) -> tuple[float, str | None]:
    """Take a slot on every limit, held as in flight until `landed`: returns (0.0, slot)
    when taken, else (seconds to wait, None). `hold_s` is the longest a call can take
    (its HTTP time-out): a slot never landed (the process died) counts until then."""
    global _take_script
    active = [lim for lim in limits if lim.limit > 0]
    if not active:
        return 0.0, ""
    if redis is None:
        redis = get_redis()
    if _take_script is None:
        _take_script = redis.register_script(_TAKE)
    now_ms = int((now if now is not None else time.time()) * 1000)
    slot = uuid.uuid4().hex
    args: list = [now_ms, slot, int(hold_s * 1000), 20]
    for lim in active:
        args += [lim.limit, int(lim.window_s * 1000)]
    wait_ms = _take_script(keys=[keys.rate_limit(lim.key) for lim in active], args=args, client=redis)
    return (0.0, slot) if not wait_ms else (float(wait_ms) / 1000.0, None)


def landed(limits: Sequence[Limit], slot: str | None, redis: Redis | None = None,
           now: float | None = None) -> None:
    """The call holding `slot` has come back (answered, failed or timed out): from now on
    its slot counts from this moment, which is after the platform stamped it."""
    global _landed_script
    active = [lim for lim in limits if lim.limit > 0]
    if not active or not slot:
        return
    if redis is None:
        redis = get_redis()
    if _landed_script is None:
        _landed_script = redis.register_script(_LANDED)
    # Rounded up: the slot must not count from before the answer arrived.
    now_ms = int((now if now is not None else time.time()) * 1000) + 1
    _landed_script(keys=[keys.rate_limit(lim.key) for lim in active], args=[now_ms, slot], client=redis)


def acquire_blocking(limits: Sequence[Limit], max_wait_s: float, redis: Redis | None = None) -> float:
    """Wait (sleeping) up to max_wait_s for a slot; returns 0.0 when taken, else the remaining wait."""
    deadline = time.monotonic() + max_wait_s
    while True:
        wait = acquire(limits, redis)
        if wait <= 0:
            return 0.0
        if time.monotonic() + wait > deadline:
            return wait
        time.sleep(wait)


# --- the platforms' limits (PLATFORM.md), from settings ---------------------------------

def wecom_message_limits(userids: Iterable[str], settings: Settings | None = None) -> list[Limit]:
    """message/send: 30 a minute and 1,000 an hour per member per app, plus the app's API budget."""
    s = settings or get_settings()
    agent = s.wecom.agent_id or "0"
    out = [Limit(f"wecom:{agent}:api:message/send:m", s.wecom_app_per_minute, 60)]
    for user in userids:
        if not user or user == "@all":
            continue
        out.append(Limit(f"wecom:{agent}:u:{user}:m", s.wecom_per_member_per_minute, 60))
        out.append(Limit(f"wecom:{agent}:u:{user}:h", s.wecom_per_member_per_hour, 3600))
    return out


def wecom_api_limits(api: str, settings: Settings | None = None) -> list[Limit]:
    """Other WeCom APIs: 10,000 calls a minute per company per API."""
    s = settings or get_settings()
    return [Limit(f"wecom:{s.wecom.agent_id or '0'}:api:{api}:m", s.wecom_app_per_minute, 60)]


MP_WINDOW_S = int(CS_WINDOW.total_seconds())


def mp_cs_limits(openid: str, window_start: float | None, settings: Settings | None = None) -> list[Limit]:
    """OA customer-service messages: mp_cs_per_window per 48 h window opened by the
    owner's last message (window_start, epoch seconds). A new message from the owner
    opens a new window, hence a new key. Unknown start: no local limit."""
    s = settings or get_settings()
    if window_start is None:
        return []
    return [Limit(f"mp:cs:{openid}:{int(window_start)}", s.mp_cs_per_window, MP_WINDOW_S)]
