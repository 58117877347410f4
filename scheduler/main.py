"""Placeholder loop until the scheduler capability lands: runs the sweeper."""
from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def run_scheduler(interval_s: float = 5.0) -> None:
    from bot.logs import setup_logging
    from bot.sweeper import sweep

    setup_logging()
    while True:
        try:
            sweep()
        except Exception as exc:
            log.warning("sweep failed: %s", exc)
        time.sleep(interval_s)
