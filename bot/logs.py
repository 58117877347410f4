"""Logging set-up: one line per event, no personal data (the moderation
capability masks phone numbers and ids before logging evidence)."""
from __future__ import annotations

import logging
import os

_done = False


def setup_logging() -> None:
    global _done
    if _done:
        return
    logging.basicConfig(level=os.environ.get("GUANJIA_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    logging.getLogger("rq.worker").setLevel(logging.WARNING)
    _done = True
