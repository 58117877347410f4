"""The intake rules of handlers/data/intake.yaml, validated on load."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

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


def _strs(data: dict, key: str, path: Path) -> tuple[str, ...]:
    v = data.get(key)
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise ValueError(f"{path}: field '{key}' should be a non-empty list of words")
    return tuple(v)


@lru_cache(maxsize=2)
def _load(path: str, mtime: float) -> IntakeRules:
    p = Path(path)
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    conduct = data.get("conduct")
    if not isinstance(conduct, dict):
        raise ValueError(f"{path}: field 'conduct' should be a mapping")
    if not isinstance(data.get("ask"), str) or not data["ask"].strip():
        raise ValueError(f"{path}: field 'ask' should be the question asked back")
    if not isinstance(conduct.get("team"), str):
        raise ValueError(f"{path}: conduct.team should name a team of duty_roster.yaml")
    roles = tuple(conduct.get("notify_roles") or ())
    if set(roles) - {"supervisor", "manager"}:
        raise ValueError(f"{path}: conduct.notify_roles should list supervisor/manager, got {list(roles)}")
    return IntakeRules(_strs(data, "openers", p), _strs(data, "filler", p), data["ask"].strip(),
                       _strs(data, "cancel_words", p), _strs(conduct, "staff_words", p),
                       _strs(conduct, "conduct_words", p), conduct["team"], roles)


def intake_rules(path: Path = INTAKE_FILE) -> IntakeRules:
    return _load(str(path), path.stat().st_mtime)
