"""Heartbeats: each long-running loop (the scheduler's, each worker's lane loop)
records in Redis when it last went round and when it last went round without an
error. `/healthz` reads them (bot/health.py). Written by the loop itself, never by
a side thread, so a stuck loop shows as stale.

Records have no TTL on purpose: a process that died leaves its last beat behind,
which is how a dead scheduler shows as stale rather than as absent.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time

from bot.queues import get_redis
from ground import keys

log = logging.getLogger(__name__)

PRUNE_AFTER_S = 24 * 3600  # a member silent this long is forgotten (an old process)


def member_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(kind: str, member: str, ok: bool = True, error: str | None = None, **extra) -> None:
    """Record one round of `member`'s loop; `ok` False when the round hit an error."""
    r = get_redis()
    now = time.time()
    key = keys.heartbeat(kind)
    old = r.hget(key, member)
    last_ok = now if ok else (json.loads(old).get("ok") if old else None)
    rec = {"beat": now, "ok": last_ok, "error": None if ok else (error or "error")[:300], **extra}
    r.hset(key, member, json.dumps(rec))


def read(kind: str) -> dict[str, dict]:
    """member -> {"beat", "ok", "error", ...}; members silent for a day are pruned."""
    r = get_redis()
    out: dict[str, dict] = {}
    now = time.time()
    for member, raw in r.hgetall(keys.heartbeat(kind)).items():
        member = member.decode() if isinstance(member, bytes) else member
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if now - float(rec.get("beat") or 0) > PRUNE_AFTER_S:
            r.hdel(keys.heartbeat(kind), member)
            continue
        out[member] = rec
    return out


class Throttled:
    """Beat at most every `every_s` (several threads of one process share it)."""

    def __init__(self, kind: str, every_s: float = 1.0, member: str | None = None) -> None:
        self.kind, self.every_s = kind, every_s
        self.member = member or member_id()
        self._last = 0.0

    def __call__(self, ok: bool = True, error: str | None = None) -> None:
        now = time.monotonic()
        if ok and now - self._last < self.every_s:
            return
        self._last = now
        try:
            beat(self.kind, self.member, ok, error)
        except Exception as exc:  # Redis down: /healthz says so on its own
            log.debug("heartbeat %s: %s", self.kind, exc)
