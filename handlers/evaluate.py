"""`guanjia faq eval FILE`: run route() over labelled cases and report.

Here, beside the router, not in faq/: it runs the whole router (handlers above the
knowledge base). Importing it adds `eval` to the `guanjia faq` group.

A case: {"id", "chat"?, "role"?, "text", "expect": {...}} where expect may hold
intent (one value or a list of acceptable ones; `also_ok` lists more),
priority (any of), category (any of), faq_id (any of), answer_any (the answer
contains one of these), answer_none (the answer contains none of these),
violation (any of).

`render` prints per-field accuracy, the intent confusion table and every
failure; `baseline_nn` is the answer rate of a plain top-1 nearest neighbour
with the same embedding model over the same KB (what retrieval alone gives).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from faq import matcher, retrieval, semantic
from faq.cli import faq
from handlers.router import route

FIELDS = ("intent", "priority", "category", "faq_id", "answer", "violation")
# Fields this capability answers for; violation belongs to moderation.
GATING = ("intent", "priority", "category", "faq_id", "answer")


@dataclass
class Report:
    total: int = 0
    checked: dict[str, int] = field(default_factory=lambda: {f: 0 for f in FIELDS})
    passed: dict[str, int] = field(default_factory=lambda: {f: 0 for f in FIELDS})
    failures: list[dict] = field(default_factory=list)
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)
    urgent_as_general: list[str] = field(default_factory=list)

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
        ok = _any(exp[f]) + (list(exp.get("also_ok") or []) if f == "intent" else []) if f in exp else []
        if f in exp and res.get(f) not in ok:
            out.append((f, f"expected {exp[f]!r}, got {res.get(f)!r}"))
    ans = res.get("answer") or ""
    if "answer_any" in exp and not any(s in ans for s in exp["answer_any"]):
        out.append(("answer", f"answer lacks any of {exp['answer_any']!r}"))
    if "answer_none" in exp and any(s in ans for s in exp["answer_none"]):
        out.append(("answer", f"answer contains one of {exp['answer_none']!r}"))
    return out


def _has(exp: dict, f: str) -> bool:
    return ("answer_any" in exp or "answer_none" in exp) if f == "answer" else f in exp


def evaluate(cases: list[dict]) -> Report:
    rep = Report()
    for case in cases:
        rep.total += 1
        res = route(case["text"], case.get("chat") or "private", case.get("role") or "owner").contract()
        exp = case.get("expect") or {}
        for f in FIELDS:
            if _has(exp, f):
                rep.checked[f] += 1
        problems = check(case, res)
        bad = {f for f, _ in problems}
        for f in FIELDS:
            if _has(exp, f) and f not in bad:
                rep.passed[f] += 1
        if "intent" in exp:
            want = _any(exp["intent"])[0]
            got = res.get("intent") if "intent" not in bad else res.get("intent")
            key = (want, want if "intent" not in bad else str(got))
            rep.confusion[key] = rep.confusion.get(key, 0) + 1
        if "urgent" in _any(exp.get("priority") or []) and res.get("priority") not in ("urgent", "important") \
                and "general" not in _any(exp.get("priority")):
            rep.urgent_as_general.append(case.get("id") or case["text"])
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
    lines.append(f"  urgent cases graded general or not a complaint: {len(rep.urgent_as_general)}"
                 + (f" ({', '.join(rep.urgent_as_general)})" if rep.urgent_as_general else ""))
    if rep.confusion:
        labels = sorted({a for a, _ in rep.confusion} | {b for _, b in rep.confusion})
        lines.append("intent confusion (rows: expected, columns: got):")
        lines.append("  " + " " * 11 + "".join(f"{b[:9]:>10}" for b in labels))
        for a in labels:
            if any(k[0] == a for k in rep.confusion):
                lines.append(f"  {a[:10]:11}" + "".join(f"{rep.confusion.get((a, b), 0) or '.':>10}" for b in labels))
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


def baseline_nn(cases: list[dict]) -> tuple[int, int, int]:
    """(answered right by a plain top-1 nearest neighbour, answered right by the
    bot, cases): over the cases with `answer_any`, the NN takes the KB entry
    whose title, phrasing or answer is closest by the same embedding model, with
    no threshold, and its answer is checked like the bot's."""
    import numpy as np

    kbv = retrieval.kb_vectors()
    entries = matcher.default().index().kb.entries
    nn = bot = n = 0
    for case in cases:
        exp = case.get("expect") or {}
        if "answer_any" not in exp:
            continue
        n += 1
        e = entries[int(np.argmax(kbv.scores(semantic.query_vector(case["text"]))))]
        nn += any(s in e.answer for s in exp["answer_any"])
        ans = route(case["text"], case.get("chat") or "private", case.get("role") or "owner").answer or ""
        bot += any(s in ans for s in exp["answer_any"])
    return nn, bot, n


@faq.command("eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--strict", is_flag=True, help="Also fail on violation checks (moderation).")
@click.option("--baseline-nn", "with_baseline", is_flag=True, help="Also the answer rate of a plain top-1 nearest neighbour.")
def eval_cmd(file: str, strict: bool, with_baseline: bool) -> None:
    """Per-field accuracy of route() on FILE (jsonl cases), the intent confusion
    table and every failure. Exits 1 when an intent/priority/category/faq_id/answer check fails."""
    cases = load_cases(file)
    rep = evaluate(cases)
    click.echo(render(rep))
    if with_baseline:
        nn, bot, n = baseline_nn(cases)
        if n:
            click.echo(f"answers right: bot {bot}/{n} {bot / n:.1%}; plain top-1 nearest neighbour "
                       f"{nn}/{n} {nn / n:.1%}; difference {(bot - nn) / n * 100:+.1f} points")
        else:
            click.echo("no case with answer_any: no baseline")
    if rep.gating_failures() or (strict and rep.failures):
        sys.exit(1)
