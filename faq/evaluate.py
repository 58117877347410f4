"""`guanjia faq eval FILE`: run route() over labelled cases and report.

A case: {"id", "chat"?, "role"?, "text", "expect": {...}} where expect may hold
intent (one value or a list of acceptable ones), priority (any of), category
(any of), faq_id (any of), answer_any (the answer contains one of these),
violation (any of).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FIELDS = ("intent", "priority", "category", "faq_id", "answer", "violation")
# Fields this capability answers for; violation belongs to moderation.
GATING = ("intent", "priority", "category", "faq_id", "answer")


@dataclass
class Report:
    total: int = 0
    checked: dict[str, int] = field(default_factory=lambda: {f: 0 for f in FIELDS})
    passed: dict[str, int] = field(default_factory=lambda: {f: 0 for f in FIELDS})
    failures: list[dict] = field(default_factory=list)

    def accuracy(self, f: str) -> float | None:
        return self.passed[f] / self.checked[f] if self.checked[f] else None

    def gating_failures(self) -> list[dict]:
        return [x for x in self.failures if x["field"] in GATING]


def _any(v) -> list:
    return v if isinstance(v, list) else [v]


def load_cases(path: str | Path) -> list[dict]:
    cases = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                cases.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON: {exc}") from None
    return cases


def check(case: dict, res: dict) -> list[tuple[str, str]]:
    """[(field, problem)] for one case and one route() result (contract dict)."""
    exp = case.get("expect") or {}
    out = []
    for f in ("intent", "priority", "category", "faq_id", "violation"):
        if f in exp and res.get(f) not in _any(exp[f]):
            out.append((f, f"expected {exp[f]!r}, got {res.get(f)!r}"))
    if "answer_any" in exp:
        ans = res.get("answer") or ""
        if not any(s in ans for s in exp["answer_any"]):
            out.append(("answer", f"answer lacks any of {exp['answer_any']!r}"))
    return out


def evaluate(cases: list[dict]) -> Report:
    from handlers.router import route

    rep = Report()
    for case in cases:
        rep.total += 1
        res = route(case["text"], case.get("chat") or "private", case.get("role") or "owner").contract()
        exp = case.get("expect") or {}
        for f in FIELDS:
            key = "answer_any" if f == "answer" else f
            if key in exp:
                rep.checked[f] += 1
        problems = check(case, res)
        bad = {f for f, _ in problems}
        for f in FIELDS:
            key = "answer_any" if f == "answer" else f
            if key in exp and f not in bad:
                rep.passed[f] += 1
        for f, why in problems:
            rep.failures.append({"id": case.get("id"), "text": case["text"], "chat": case.get("chat"),
                                 "field": f, "problem": why, "got": res})
    return rep


def render(rep: Report) -> str:
    lines = [f"{rep.total} cases"]
    for f in FIELDS:
        acc = rep.accuracy(f)
        if acc is not None:
            note = "" if f in GATING else "  (moderation capability)"
            lines.append(f"  {f:10} {rep.passed[f]:4}/{rep.checked[f]:<4} {acc:7.1%}{note}")
    if rep.failures:
        lines.append(f"failures ({len(rep.failures)}):")
        for x in rep.failures:
            g = x["got"]
            lines.append(f"  [{x['id']}] {x['field']}: {x['problem']}\n      text: {x['text']}\n"
                         f"      got: intent={g.get('intent')} priority={g.get('priority')} category={g.get('category')} "
                         f"faq_id={g.get('faq_id')} score={g.get('score')} violation={g.get('violation')}\n"
                         f"      why: {g.get('why')}")
    else:
        lines.append("no failures")
    return "\n".join(lines)
