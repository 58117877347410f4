"""Redis connection and rq queues, one place for their names."""
from __future__ import annotations

from functools import lru_cache

from redis import Redis
from rq import Queue

# Inbound handling must not wait behind a bulk campaign, so they get their own queues.
QUEUE_NAMES = ("inbound", "outbound", "scheduled", "bulk")


@lru_cache(maxsize=4)
def _redis(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5, health_check_interval=30)


def get_redis() -> Redis:
    from ground.config import get_settings

    return _redis(get_settings().redis_url)


def get_queue(name: str) -> Queue:
    return Queue(name, connection=get_redis())


def reset_redis() -> None:
    _redis.cache_clear()
