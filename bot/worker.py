"""The rq worker. Heavy things (jieba, the FAQ index) load once at start, so no
job pays ~1.3 s for them."""
from __future__ import annotations

import logging
import os

from bot import ports
from bot.inbox import consume, lane_length, pop_and_process
from bot.logs import setup_logging
from bot.queues import get_queue, get_redis
from ground import keys
from ground.config import get_settings
from handlers import load_capabilities
from handlers.capability import run_all

log = logging.getLogger(__name__)


def warm_up() -> None:
    """Every capability's warm-ups (`Capability.warm_up`), once, in the parent."""
    ports.install()
    for cap in load_capabilities():
        run_all(cap.warmups)


# The web process's warm-up (deploy/gunicorn.conf.py::post_fork): None = not managed (tests,
# `guanjia serve --dev`: models load on first use), "warming", then "warm". While warming,
# plain texts go to the worker lane (bot/webhooks.py), so no owner waits for a model to load
# and the port opens at once (a first start may train the models for a minute).
_web_warm: str | None = None


def web_ready() -> bool:
    return _web_warm != "warming"


def warm_in_background() -> None:
    """Load the capabilities and models in a thread of this (web) process."""
    import sys
    import threading
    import time

    global _web_warm
    _web_warm = "warming"
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    def run() -> None:
        global _web_warm
        t0 = time.monotonic()
        try:  # lowest priority (Linux: per thread): requests and `guanjia worker`'s own warm-up go first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        try:
            warm_up()
        except Exception:  # stays "warming": every message keeps going to the workers
            log.exception("web warm-up failed; messages are handled by the workers")
            return
        _web_warm = "warm"
        print(f"guanjia-web[{os.getpid()}]: models loaded in {time.monotonic() - t0:.1f} s; "
              "plain texts are handled in this process", file=sys.stderr, flush=True)

    threading.Thread(target=run, daemon=True, name="web-warm-up").start()


def run_worker(burst: bool = False, queues: list[str] | None = None, fork: bool = False) -> None:
    """Jobs run in this process (rq SimpleWorker) unless `fork`: a fork per job
    costs 10-30 ms, longer than handling a message, and the passive reply waits on
    it. The jobs are ours and short; rq's job timeout still applies (SIGALRM), and
    more throughput means more `guanjia worker` processes."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # native libraries are not fork-safe with threads
    from rq import SimpleWorker, Worker

    setup_logging()
    warm_up()
    names = queues or list(keys.QUEUE_NAMES)
    if "inbound" in names:
        _start_lane_consumers(burst)
    cls = Worker if fork else SimpleWorker
    worker = cls([get_queue(n) for n in names], connection=get_redis())
    log.info("worker on %s (%s)", ", ".join(names), "fork per job" if fork else "in process")
    worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")


def _start_lane_consumers(burst: bool) -> None:
    """Threads popping the inbound lane (bot/inbox.py). Handling is mostly CPU, so a
    couple of threads hide the I/O waits; more throughput = more worker processes."""
    import threading

    if burst:  # `--burst`: empty the lane first, then run the rq queues to empty
        while lane_length():
            pop_and_process(0)
        return
    stop = threading.Event()
    for i in range(get_settings().inbound_threads):
        threading.Thread(target=consume, args=(stop,), daemon=True, name=f"inbound-{i}").start()
