"""The decisions: given a normalized message and the store, return replies and actions.

Handlers never speak HTTP. Each capability declares one `Capability` object
(handlers/capability.py) named `capability` in its package; `CAPABILITIES`
is the one list every host (web app, worker, scheduler, CLI, demo data)
iterates to install what each one brings.
"""
from __future__ import annotations

import importlib

from handlers.capability import Capability, unique

# One line per capability: the module whose `capability` says what it brings.
# Order matters where one builds on another (consultations takes over the
# understanding capability's handoff; routed hooks run in this order).
CAPABILITIES: list[str] = [
    "handlers.basics",
    "handlers.clocks",  # the one clock engine every capability's obligations run on
    "handlers.groups",
    "handlers.tickets",
    "handlers.membership",
    "handlers.bookings",
    "handlers.understanding",
    "handlers.consultations",  # after understanding: takes over private handoffs
    "handlers.phone_reveal",  # 「电话 T12」 / the cards' 查看电话: owners' numbers to staff, logged
    "handlers.owner_survey",
    "handlers.obligations",  # the calendar obligations' actions (O12-O18) on the clock engine
]

_loaded: list[Capability] | None = None


def load_capabilities() -> list[Capability]:
    """Import every capability once (cheap after the first call) and return
    their objects, in list order. A name two of them register raises."""
    global _loaded
    if _loaded is not None:
        return _loaded
    caps = []
    for name in CAPABILITIES:
        cap = getattr(importlib.import_module(name), "capability", None)
        if not isinstance(cap, Capability):
            raise TypeError(f"{name} in handlers.CAPABILITIES has no `capability = Capability(...)`")
        caps.append(cap)
    unique(caps, "capability", lambda c: [(c.name, c)])
    _loaded = caps
    return caps


def add_capability(name: str) -> Capability:
    """Tests: install one more capability module after the others (as one more
    line in CAPABILITIES would)."""
    caps = load_capabilities()
    if name not in CAPABILITIES:
        CAPABILITIES.append(name)
    cap = importlib.import_module(name).capability
    if cap not in caps:
        unique([*caps, cap], "capability", lambda c: [(c.name, c)])
        caps.append(cap)
    return cap
