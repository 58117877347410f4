"""Sliding-window rate limits in Redis, shared by every worker.

A sliding log (a sorted set of send times per key) rather than GCRA: the
platforms count "30 in any minute" per member, and GCRA with a burst of 30
lets through up to 60 in some minute. One Lua call checks and takes all the
keys of a send atomically, so a 10,000-recipient campaign costs one round trip
per message.

    wait = acquire(wecom_message_limits(["zhangsan"]))
    if wait: defer the send by `wait` seconds (nothing was taken)
    else:    a slot was taken on every key; send now
"""
from __future__ import annotations

import time
import uuid
from typing import Iterable, NamedTuple, Sequence

from redis import Redis

from bot.queues import get_redis
from ground import keys
from ground.config import Settings, get_settings


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


MP_WINDOW_S = 48 * 3600


def mp_cs_limits(openid: str, window_start: float | None, settings: Settings | None = None) -> list[Limit]:
    """OA customer-service messages: mp_cs_per_window per 48 h window opened by the
    owner's last message (window_start, epoch seconds). A new message from the owner
    opens a new window, hence a new key. Unknown start: no local limit."""
    s = settings or get_settings()
    if window_start is None:
        return []
    return [Limit(f"mp:cs:{openid}:{int(window_start)}", s.mp_cs_per_window, MP_WINDOW_S)]
