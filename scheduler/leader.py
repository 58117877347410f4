"""One leader among several `guanjia scheduler` processes: a Redis lock with
a TTL, renewed by its holder. If the leader dies, the key expires and another
process takes it within `ttl` (+ one poll interval)."""
from __future__ import annotations

import os
import socket
import uuid

from redis import Redis

from ground import keys

# Renew / release only if we still hold it (compare-and-set in one step).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaderLock:
    def __init__(self, redis: Redis, key: str = keys.SCHEDULER_LEADER, ttl_s: float = 30.0) -> None:
        self.redis, self.key, self.ttl_ms = redis, key, int(ttl_s * 1000)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def acquire(self) -> bool:
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))

    def release(self) -> None:
        try:
            self._release(keys=[self.key], args=[self.token])
        except Exception:
            pass  # Redis gone: the TTL releases it anyway

    def holder(self) -> str | None:
        v = self.redis.get(self.key)
        return v.decode() if isinstance(v, bytes) else v
