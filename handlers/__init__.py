"""The decisions: given a normalized message and the store, return replies and actions.

Handlers never speak HTTP. Capabilities register themselves in
`handlers.registry`; `CAPABILITIES` lists the modules imported at start.
"""

# One line per capability module; importing it registers its handlers.
CAPABILITIES: list[str] = [
    "handlers.basics",
    "handlers.groups",
    "handlers.tickets",
    "handlers.membership",
    "handlers.bookings",
    "handlers.understanding",
    "handlers.consultations",  # after understanding: takes over private handoffs
    "handlers.phone_reveal",  # 「电话 T12」 / the cards' 查看电话: owners' numbers to staff, logged
    "scheduler.survey",
]


_loaded = False


def load_capabilities() -> None:
    """Import every capability once (cheap after the first call)."""
    global _loaded
    if _loaded:
        return
    import importlib

    for name in CAPABILITIES:
        importlib.import_module(name)
    _loaded = True
