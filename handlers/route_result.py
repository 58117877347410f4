"""The result of understanding one text, exactly as CONTRACT.md's `route --json`."""
from __future__ import annotations

from dataclasses import dataclass, field

INTENTS = ("faq", "complaint", "booking", "membership", "command", "smalltalk", "handoff")
VIOLATIONS = ("none", "ad", "insult", "privacy", "illegal")
ACTIONS = ("none", "warn", "mute", "remove", "escalate")


@dataclass
class RouteResult:
    intent: str = "handoff"
    priority: str | None = None
    category: str | None = None
    faq_id: str | None = None
    score: float = 0.0
    answer: str | None = None
    violation: str = "none"
    action: str = "none"
    why: str = ""
    # Not part of the contract: which registered handler takes it, and its arguments.
    handler: str | None = field(default=None, repr=False)
    args: dict = field(default_factory=dict, repr=False)

    def contract(self) -> dict:
        """The CONTRACT.md fields only, in order. Read directly, not through asdict(), which
        deep-copies every field (`args` included) and was measured on every message."""
        return {k: getattr(self, k) for k in CONTRACT_FIELDS}


CONTRACT_FIELDS = ("intent", "priority", "category", "faq_id", "score", "answer", "violation", "action", "why")
