"""The labelled data stays honest: the training corpus parses, uses only the
contract's labels, holds no text twice and nothing of the held-out sets (the
frozen test set, the repository's and the shared dev sets), so that figures
measured on those sets mean what they say."""
from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import yaml
from opencc import OpenCC

from tests.conftest import ROOT, SHARED

TRAIN = ROOT / "handlers" / "data" / "train" / "intents.jsonl"
FROZEN = ROOT / "tests" / "data" / "frozen" / "test_set.jsonl"
INTENTS = {"faq", "complaint", "booking", "membership", "command", "smalltalk", "handoff"}
PRIORITIES = {None, "urgent", "important", "general"}
# Safety first: anything that floods, burns, electrocutes, traps or poisons.
SAFETY = re.compile(r"水管爆|爆管|着火|起火|漏电|触电|被电|冒火花|燃气泄漏|煤气泄漏|一氧化碳|被困|困人|关人")
# ... unless the words are negated or hypothetical ("打不着火", "万一困人怎么办").
NOT_AN_EVENT = re.compile(r"打不着火|万一|如果|真要着火|要真着火|真要是着火")

_t2s = OpenCC("t2s")


def _norm(text: str) -> str:
    """What a classifier sees as the same message: simplified, lower case, letters and digits only."""
    text = _t2s.convert(unicodedata.normalize("NFKC", text)).lower()
    return re.sub(r"[\W_]+", "", text)


def _lines(path: Path) -> list[dict]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:  # name the line, not just "bad JSON"
                pytest.fail(f"{path.name}:{n}: not JSON: {exc}")
    return out


def _categories() -> set:
    spec = yaml.safe_load((ROOT / "handlers" / "data" / "priority.yaml").read_text(encoding="utf-8"))
    return set(spec["category"]) | {"other"}


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return _lines(TRAIN)


def test_every_line_is_a_labelled_owner_message(corpus):
    cats = _categories()
    bad = []
    for n, row in enumerate(corpus, 1):
        if set(row) != {"text", "intent", "priority", "category"} or not str(row["text"]).strip():
            bad.append((n, "fields", row))
        elif row["intent"] not in INTENTS or row["priority"] not in PRIORITIES:
            bad.append((n, "intent/priority", row))
        elif row["intent"] == "complaint" and (row["priority"] is None or row["category"] not in cats):
            bad.append((n, "a complaint needs a priority and a category", row))
        elif row["intent"] != "complaint" and (row["priority"] is not None or row["category"] is not None):
            bad.append((n, "only complaints carry priority/category", row))
    assert not bad, bad[:10]
    assert len(corpus) >= 2000
    assert {r["intent"] for r in corpus} == INTENTS


def test_safety_critical_reports_are_never_below_urgent(corpus):
    low = [r["text"] for r in corpus
           if r["intent"] == "complaint" and r["priority"] != "urgent" and SAFETY.search(_t2s.convert(r["text"])) and not NOT_AN_EVENT.search(_t2s.convert(r["text"]))]
    assert not low, low


def test_no_text_twice(corpus):
    seen: dict[str, str] = {}
    dups = []
    for row in corpus:
        key = _norm(row["text"])
        if key in seen:
            dups.append((row["text"], seen[key]))
        seen[key] = row["text"]
    assert not dups, dups[:10]


def test_nothing_from_the_held_out_sets(corpus):
    held = [FROZEN, *sorted((ROOT / "tests" / "data").glob("*.jsonl"))]
    if (SHARED / "eval").is_dir():
        held += sorted((SHARED / "eval").glob("*.jsonl"))
    texts = {_norm(c["text"]) for p in held for c in _lines(p)}
    leaked = [r["text"] for r in corpus if _norm(r["text"]) in texts]
    assert not leaked, leaked[:10]


def test_frozen_test_set_is_well_formed():
    cases = _lines(FROZEN)
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)) and len(cases) >= 300
    for c in cases:
        assert c["chat"] in {"private", "vip", "building"} and c["text"].strip(), c
        exp = c["expect"]
        if "intent" in exp:
            assert {exp["intent"], *exp.get("also_ok", [])} <= INTENTS, c
        for f in ("priority", "category", "violation", "action", "faq_id"):
            assert isinstance(exp.get(f, []), list), c


# --- every labelled file, and the pairs that train the answer calibrator ------------------

TRAIN_DIR = ROOT / "handlers" / "data" / "train"
WRITTEN_FRESH = [TRAIN_DIR / "faq_pairs.jsonl", TRAIN_DIR / "intents_asking.jsonl", TRAIN_DIR / "intents_fresh.jsonl",
                 TRAIN_DIR / "intents_fresh2.jsonl", TRAIN_DIR / "intents_asking2.jsonl",
                 TRAIN_DIR / "intents_priority.jsonl", TRAIN_DIR / "intents_asking3.jsonl",
                 TRAIN_DIR / "intents_complaint_questions.jsonl", TRAIN_DIR / "intents_lookups.jsonl",
                 TRAIN_DIR / "intents_story_questions.jsonl"]


def _held_out_texts() -> list[str]:
    held = [FROZEN, ROOT / "tests" / "data" / "faq_heldout.jsonl", ROOT / "tests" / "data" / "english_probe.jsonl",
            ROOT / "tests" / "data" / "zh_fresh_probe.jsonl", ROOT / "tests" / "data" / "wild_probe.jsonl",
            ROOT / "tests" / "data" / "wild2_probe.jsonl", ROOT / "tests" / "data" / "wild3_probe.jsonl",
            ROOT / "tests" / "data" / "wild4_probe.jsonl", ROOT / "tests" / "data" / "wild5_probe.jsonl",
            ROOT / "tests" / "data" / "wild6_probe.jsonl", ROOT / "tests" / "data" / "priority_probe2.jsonl",
            ROOT / "tests" / "data" / "wild7_probe.jsonl", ROOT / "tests" / "data" / "wild8_probe.jsonl"]
    if (SHARED / "eval").is_dir():
        held += sorted((SHARED / "eval").glob("*.jsonl"))
    return [c["text"] for p in held if p.exists() for c in _lines(p)]


def _bigrams(text: str) -> set[str]:
    t = _norm(text)
    return {t[i:i + 2] for i in range(len(t) - 1)}


def test_no_held_out_case_in_any_training_file_or_the_kb():
    """Exact copies (as a classifier sees them) of a frozen, held-out or dev case are
    in no training file and no KB phrasing."""
    from faq.kb import load

    held = {_norm(t) for t in _held_out_texts()}
    leaked = [(p.name, r["text"]) for p in sorted(TRAIN_DIR.glob("intents*.jsonl")) + WRITTEN_FRESH
              for r in _lines(p) if _norm(r["text"]) in held]
    kb = load()
    leaked += [("kb", q) for e in kb.entries for q in (e.title, *e.questions) if _norm(q) in held]
    assert not leaked, leaked[:10]


def test_fresh_lines_are_not_near_copies_of_held_out_cases():
    """The lines written for the calibrator and the asking/reporting contrast are
    not paraphrases of evaluation cases: no line shares 45% or more of its
    character bigrams (Jaccard) with a frozen, held-out or dev case."""
    held = [_bigrams(t) for t in _held_out_texts()]
    by_bigram: dict[str, list[int]] = {}
    for i, h in enumerate(held):
        for g in h:
            by_bigram.setdefault(g, []).append(i)
    near = []
    for p in WRITTEN_FRESH:
        for r in _lines(p):
            b = _bigrams(r["text"])
            # Only the cases sharing a bigram can be near (the same Jaccard, ~10x faster).
            shared = Counter(i for g in b for i in by_bigram.get(g, ()))
            best = max((n / max(1, len(b) + len(held[i]) - n) for i, n in shared.items()), default=0.0)
            if best >= 0.45:
                near.append((p.name, r["text"], round(best, 2)))
    assert not near, near[:10]


def test_faq_pairs_name_kb_entries_and_are_labelled_lines():
    from faq.kb import load

    ids = {e.id for e in load().entries}
    cats = _categories()
    rows = _lines(TRAIN_DIR / "faq_pairs.jsonl")
    assert len(rows) >= 150
    assert all(r["intent"] == "faq" and r["faq_id"] in ids for r in rows), [r for r in rows if r["faq_id"] not in ids]
    for r in _lines(TRAIN_DIR / "intents_asking.jsonl"):
        assert set(r) == {"text", "intent", "priority", "category"} and r["intent"] in INTENTS, r
        assert (r["intent"] == "complaint") == (r["priority"] is not None) == (r["category"] in cats), r
    fresh = (_lines(TRAIN_DIR / "intents_fresh.jsonl") + _lines(TRAIN_DIR / "intents_fresh2.jsonl")
             + _lines(TRAIN_DIR / "intents_asking2.jsonl") + _lines(TRAIN_DIR / "intents_priority.jsonl")
             + _lines(TRAIN_DIR / "intents_asking3.jsonl")
             + _lines(TRAIN_DIR / "intents_complaint_questions.jsonl")
             + _lines(TRAIN_DIR / "intents_lookups.jsonl")
             + _lines(TRAIN_DIR / "intents_story_questions.jsonl"))
    for r in fresh:  # the fresh lines also label off-topic asks as `offtopic` (the model's label)
        assert set(r) == {"text", "intent", "priority", "category"} and r["intent"] in INTENTS | {"offtopic"}, r
        assert (r["intent"] == "complaint") == (r["priority"] is not None) == (r["category"] in cats), r
    low = [r["text"] for r in fresh if r["intent"] == "complaint" and r["priority"] != "urgent"
           and SAFETY.search(_t2s.convert(r["text"])) and not NOT_AN_EVENT.search(_t2s.convert(r["text"]))]
    assert not low, low
