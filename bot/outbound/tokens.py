"""access_token cache shared by every process through Redis.

The platforms limit token fetches (OA: 2,000 a day; WeCom blocks apps that
fetch too often) and an OA /cgi-bin/token call invalidates the previous token,
so exactly one process refreshes at a time: it holds a short Redis lock, the
others poll for the new value. If Redis is unreachable a process-local cache
keeps sending possible (at worst one fetch per process).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Callable

from redis import Redis
from redis.exceptions import RedisError

from ground import keys

log = logging.getLogger(__name__)

LOCK_TTL_MS = 15_000  # longer than one token call with its time-out
# After the platform refuses to issue a token (wrong secret, IP not allowed...),
# callers fail fast for this long instead of each asking again: a 10,000-message
# campaign must not spend the OA's 2,000 token calls a day in a minute.
ERROR_TTL_S = 30
WAIT_POLL_S = 0.05

# Delete the key only if it still holds what we expect (another process may
# already have stored a fresh token, or taken the lock after ours expired).
_COMPARE_DELETE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class TokenUnavailable(RuntimeError):
    """No token could be obtained in time (another refresher hung, Redis trouble)."""


class TokenCache:
    """One platform app's token.

    fetch(force) calls the platform and returns (token, expires_in); force asks
    for a new token even when the platform would hand back the current one
    (OA stable_token's force_refresh).
    """

    def __init__(self, name: str, fetch: Callable[[bool], tuple[str, int]],
                 redis_getter: Callable[[], Redis], margin_s: float = 300.0, wait_s: float = 20.0,
                 can_force: bool = True) -> None:
        self.key = keys.token(name)
        self.lock_key = self.key + ":lock"
        self.bad_key = self.key + ":bad"
        self.error_key = self.key + ":error"
        self._fetch = fetch
        self._redis = redis_getter
        self.margin_s = margin_s
        self.wait_s = wait_s
        self.can_force = can_force  # WeCom's gettoken has no force mode: asking twice gains nothing
        self._local: tuple[str, float] | None = None
        self._local_lock = threading.Lock()

    def _ttl(self, expires_in: int) -> int:
        # Never let the margin eat most of a short-lived token.
        return max(1, int(expires_in - min(self.margin_s, expires_in / 4)))

    def get(self) -> str:
        try:
            r = self._redis()
            cached = r.get(self.key)
        except RedisError as exc:
            log.warning("token cache %s: Redis unavailable (%s); using the process cache", self.key, exc)
            return self._get_local()
        if cached:
            return cached.decode()
        error = r.get(self.error_key)
        if error:
            raise TokenUnavailable(f"token fetch refused recently: {error.decode()}")
        return self._refresh(r)

    def _refresh(self, r: Redis) -> str:
        deadline = time.monotonic() + self.wait_s
        while True:
            me = uuid.uuid4().hex
            if r.set(self.lock_key, me, nx=True, px=LOCK_TTL_MS):
                try:
                    return self._refresh_locked(r)
                finally:
                    try:
                        r.eval(_COMPARE_DELETE, 1, self.lock_key, me)
                    except RedisError:
                        pass
            time.sleep(WAIT_POLL_S)
            cached = r.get(self.key)
            if cached:
                return cached.decode()
            if time.monotonic() > deadline:
                raise TokenUnavailable(f"no token for {self.key} after {self.wait_s}s")

    def _refresh_locked(self, r: Redis) -> str:
        """Holding the lock: the token someone else just stored, or a new one fetched."""
        cached = r.get(self.key)  # refreshed between our miss and our lock
        if cached:
            return cached.decode()
        try:
            token, expires_in = self._fetch(False)
            bad = r.get(self.bad_key) if self.can_force else None
            if bad and bad.decode() == token:
                # The platform handed back the token it just refused: force a new one.
                token, expires_in = self._fetch(True)
        except Exception as exc:
            if getattr(exc, "errcode", None) is not None:  # an answer, not a network hiccup
                r.set(self.error_key, str(exc)[:300], ex=ERROR_TTL_S)
            raise
        r.set(self.key, token, ex=self._ttl(expires_in))
        return token

    def _get_local(self) -> str:
        with self._local_lock:
            if self._local and self._local[1] > time.monotonic():
                return self._local[0]
            token, expires_in = self._fetch(False)
            self._local = (token, time.monotonic() + self._ttl(expires_in))
            return token

    def invalidate(self, bad_token: str) -> None:
        """The platform refused `bad_token` (40001/42001/40014): drop it unless already replaced."""
        with self._local_lock:
            if self._local and self._local[0] == bad_token:
                self._local = None
        try:
            r = self._redis()
            r.set(self.bad_key, bad_token, ex=300)
            r.eval(_COMPARE_DELETE, 1, self.key, bad_token)
        except RedisError as exc:
            log.warning("token cache %s: could not invalidate in Redis (%s)", self.key, exc)
