"""A fitted model kept in var/cache: read the first cache file that exists, else
build it and write it atomically (one writer's temp file, then rename). A cache that
cannot be read or written is only a missed shortcut, never an error."""
from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Callable, Iterable, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def load_or_build(path: Path, build: Callable[[], T], what: str, also_read: Iterable[Path] = (),
                  read: bool = True) -> T:
    """`build()`'s result, from `path` (or one of `also_read`) when cached there;
    `read=False` builds afresh and writes the cache (`guanjia faq train`)."""
    for p in (path, *also_read) if read else ():
        try:
            with p.open("rb") as f:
                return pickle.load(f)
        except FileNotFoundError:
            pass
        except Exception as exc:  # a truncated or stale cache
            log.info("%s cache not used (%s)", what, exc)
    value = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as exc:
        log.info("%s cache not written (%s)", what, exc)
    return value
