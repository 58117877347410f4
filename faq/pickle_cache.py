"""A fitted model kept in var/cache: read the first cache file that exists, else
build it and write it atomically (one writer's temp file, then rename). A cache that
cannot be read or written is only a missed shortcut, never an error.

Processes that start together (the web process warming in the background and the
worker parent, or the tests' parallel warm-up) would each fit the same minute-long
model: the builder holds a lock file beside the cache while it builds, and another
process wanting the same file waits for it and reads the result instead."""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

try:
    import fcntl
except ImportError:  # not on this platform: each process builds its own
    fcntl = None

log = logging.getLogger(__name__)
T = TypeVar("T")
LOCK_SUFFIX = ".lock"


def _read(paths: Iterable[Path], what: str):
    for p in paths:
        try:
            with p.open("rb") as f:
                return True, pickle.load(f)
        except FileNotFoundError:
            pass
        except Exception as exc:  # a truncated or stale cache
            log.info("%s cache not used (%s)", what, exc)
    return False, None


@contextlib.contextmanager
def building(path: Path) -> Iterator[None]:
    """Held while `path` is being built (one builder at a time, across processes)."""
    if fcntl is None:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_name(path.name + LOCK_SUFFIX), "w")
    except OSError:  # a read-only cache dir: build without waiting for anyone
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def load_or_build(path: Path, build: Callable[[], T], what: str, also_read: Iterable[Path] = (),
                  read: bool = True) -> T:
    """`build()`'s result, from `path` (or one of `also_read`) when cached there;
    `read=False` builds afresh and writes the cache."""
    paths = (path, *also_read)
    if read:
        found, value = _read(paths, what)
        if found:
            return value
    with building(path):
        if read:  # another process may have built it while this one waited
            found, value = _read(paths, what)
            if found:
                return value
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
