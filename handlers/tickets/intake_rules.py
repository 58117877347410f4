"""The intake rules of handlers/data/intake.yaml, validated on load."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ground import rules

INTAKE_FILE = Path(__file__).resolve().parent.parent / "data" / "intake.yaml"
_PUNCT = re.compile(r"[\s,，.。!！?？~～、:：;；]+")


@dataclass(frozen=True)
class IntakeRules:
    openers: tuple[str, ...]
    filler: tuple[str, ...]
    ask: str
    cancel_words: tuple[str, ...]
    staff_words: tuple[str, ...]
    conduct_words: tuple[str, ...]
    conduct_team: str
    notify_roles: tuple[str, ...]

    def only_opener(self, text: str) -> bool:
        """「我要投诉」 / 「你好，我想报修！」: nothing yet about what happened."""
        rest = _PUNCT.sub("", text or "")
        for w in sorted(self.openers, key=len, reverse=True):
            rest = rest.replace(w, "")
        for w in sorted(self.filler, key=len, reverse=True):
            rest = rest.replace(w, "")
        return rest == "" and any(w in (text or "") for w in self.openers)

    def about_conduct(self, text: str) -> bool:
        """A staff member's behaviour, not a broken thing: 「保安态度很差还骂人」."""
        return any(w in text for w in self.staff_words) and any(w in text for w in self.conduct_words)

    def cancels(self, text: str) -> bool:
        return _PUNCT.sub("", text or "") in self.cancel_words


_WORDS = rules.ListOf(rules.Text(), min=1)
SCHEMA = rules.Record(
    openers=_WORDS, filler=_WORDS, ask=rules.Text(), cancel_words=_WORDS,
    conduct=rules.Record(staff_words=_WORDS, conduct_words=_WORDS, team=rules.Text(),
                         notify_roles=rules.Opt(rules.ListOf(rules.OneOf("supervisor", "manager")), [])),
)


def _build(d: dict, src: rules.Source) -> IntakeRules:
    c = d["conduct"]
    return IntakeRules(tuple(d["openers"]), tuple(d["filler"]), d["ask"], tuple(d["cancel_words"]),
                       tuple(c["staff_words"]), tuple(c["conduct_words"]), c["team"], tuple(c["notify_roles"]))


INTAKE = rules.RuleFile(INTAKE_FILE, schema=SCHEMA, build=_build)


def intake_rules(path: Path = INTAKE_FILE) -> IntakeRules:
    return INTAKE.get(path)
