"""The Redis connection and rq queues (their names are in ground/keys.py)."""
from __future__ import annotations

from functools import lru_cache

from redis import Redis
from rq import Queue

from ground.config import get_settings


@lru_cache(maxsize=4)
def _redis(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5, health_check_interval=30)


def get_redis() -> Redis:
    return _redis(get_settings().redis_url)


def get_queue(name: str) -> Queue:
    return Queue(name, connection=get_redis())


def reset_redis() -> None:
    _redis.cache_clear()
