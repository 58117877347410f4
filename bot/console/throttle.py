"""Online password guessing at the console's sign-in (issue 13, item 6).

- The attempt is counted BEFORE the password is evaluated, in one atomic step
  (a Redis INCR): 64 parallel guesses for one name get 5 evaluations, the rest
  a 429 without the password being looked at.
- The count is per user name AND address: a stranger failing as `admin` from
  elsewhere cannot lock the real admin out. A second, larger count per address
  (any name) stops one address spraying passwords over many names.
- Redis down: the same counts in this process (a lock and a dict), so the
  limit still holds (per process: gunicorn's workers each allow the limit).
- A successful sign-in clears its user+address count.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time

from bot.queues import get_redis
from ground import keys

log = logging.getLogger(__name__)

MAX_PER_USER_ADDRESS = 5
MAX_PER_ADDRESS = 30
WINDOW_S = 900

# Both counts in one atomic step, each window set on its first hit (no gap between
# INCR and EXPIRE, and no other attempt counted between the two counts).
_INCR = """
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[1]) end
  out[i] = n
end
return out
"""

_local: dict[str, tuple[int, float]] = {}
_local_lock = threading.Lock()


def _keys(username: str, address: str) -> tuple[str, str]:
    name = hashlib.sha256(username[:64].encode()).hexdigest()[:24]  # no names in Redis key listings
    return keys.login_attempts(name, address), keys.login_attempts(None, address)


def _incr_local(key: str, now: float) -> int:
    """Caller holds _local_lock."""
    count, until = _local.get(key, (0, 0.0))
    if until <= now:
        count, until = 0, now + WINDOW_S
    count += 1
    _local[key] = (count, until)
    if len(_local) > 10000:  # bound the memory an attacker can make us use
        for k in [k for k, (_, u) in _local.items() if u <= now]:
            del _local[k]
    return count


def begin_attempt(username: str, address: str) -> bool:
    """Count this attempt; False when over a limit (then do not evaluate the password)."""
    ua, a = _keys(username, address)
    try:
        r = get_redis()
        n_ua, n_a = (int(n) for n in r.register_script(_INCR)(keys=[ua, a], args=[WINDOW_S]))
    except Exception as exc:
        log.warning("redis unavailable for the sign-in limit (%s); counting in this process",
                    type(exc).__name__)
        now = time.monotonic()
        with _local_lock:
            n_ua, n_a = _incr_local(ua, now), _incr_local(a, now)
    return n_ua <= MAX_PER_USER_ADDRESS and n_a <= MAX_PER_ADDRESS


def succeeded(username: str, address: str) -> None:
    """Only failures stay counted: an office behind one address signs in all day."""
    ua, a = _keys(username, address)
    with _local_lock:
        _local.pop(ua, None)
        if a in _local:
            count, until = _local[a]
            _local[a] = (max(0, count - 1), until)
    try:
        r = get_redis()
        r.delete(ua)
        if r.decr(a) < 0:
            r.delete(a)
    except Exception:
        pass


def reset_local() -> None:
    """Tests: forget the in-process counts."""
    with _local_lock:
        _local.clear()
