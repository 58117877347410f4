"""Fresh Chinese owner phrasing, answered with the right fact.

tests/data/zh_fresh_probe.jsonl (79 questions over 79 entries: colloquial, typos,
traditional characters, voice run-ons, stories, anger, dialect) was written on
2026-12-03 by a helper who read only the entries' ids, titles and answers, never their
phrasings, the training data or the evaluation sets (one line near a training line was
dropped). Measured once and not tuned on (`guanjia faq eval
tests/data/zh_fresh_probe.jsonl --baseline-nn`): answers 72/79 (91.1%), the same as a
plain nearest neighbour (73/79 before the English gloss: a near tie flipped); intent 92.4%, every miss an angry or
rhetorical question ("物业费说涨就涨啊？") taken for a complaint. The bars sit a little below.
"""
from __future__ import annotations

import pytest

from tests.conftest import ROOT

PROBE = ROOT / "tests" / "data" / "zh_fresh_probe.jsonl"
MIN_ANSWERS = 0.88
MIN_INTENT = 0.90


@pytest.fixture(scope="module")
def report():
    from handlers.evaluate import evaluate, load_cases

    return evaluate(load_cases(PROBE))


def test_fresh_questions_are_answered_with_the_right_fact(report):
    wrong = [(f["id"], f["text"], f["problem"]) for f in report.failures if f["field"] == "answer"]
    assert report.checked["answer"] == 79
    assert report.passed["answer"] / report.checked["answer"] >= MIN_ANSWERS, wrong


def test_fresh_questions_are_not_ticketed(report):
    wrong = [(f["id"], f["text"], f["problem"]) for f in report.failures if f["field"] == "intent"]
    assert report.passed["intent"] / report.checked["intent"] >= MIN_INTENT, wrong
