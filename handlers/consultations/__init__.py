"""Consultations (issue 14): a person behind every handoff. See core.py.

Importing this package registers the handoff intent handler (replacing the
understanding capability's one for private OA chats, so it must come after
"handlers.understanding" in handlers.CAPABILITIES), the staff commands, the
card buttons "consult:" and the staff reply exchange, and installs itself as the
handoff of handlers/handoff_hook.py (membership and understanding hand off through it).
"""
from handlers import handoff_hook
from handlers.consultations import chat, core  # noqa: F401
from handlers.consultations.capability import capability  # noqa: F401,E402  (what this capability brings)

handoff_hook.set_handoff(core.handoff)
