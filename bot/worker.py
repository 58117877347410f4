"""The rq worker. Heavy things (jieba, the FAQ index) load in the parent once,
so every forked job inherits them instead of paying ~1.3 s each."""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

# Warm-up hooks a capability adds ("module:function"), run once in the parent.
WARMUPS: list[str] = ["faq.matcher:warm_up"]


def warm_up() -> None:
    import importlib

    from handlers import load_capabilities

    load_capabilities()
    for spec in WARMUPS:
        module, fn = spec.split(":")
        getattr(importlib.import_module(module), fn)()


def run_worker(burst: bool = False, queues: list[str] | None = None) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # native libraries are not fork-safe with threads
    from rq import Worker

    from bot.logs import setup_logging
    from bot.queues import QUEUE_NAMES, get_queue, get_redis

    setup_logging()
    warm_up()
    names = queues or list(QUEUE_NAMES)
    worker = Worker([get_queue(n) for n in names], connection=get_redis())
    log.info("worker on %s", ", ".join(names))
    worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
