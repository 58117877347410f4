"""Owners' questions told with a problem, a person or an event are answered, not
ticketed, and complaints worded as questions or politely stay complaints.

tests/data/asking_probe.jsonl (241 lines: 140 questions, 101 complaints, half of
them worded as questions or very politely) was written before the training data
and the understanding code were read, and is not trained on
(handlers/data/train/intents_asking2.jsonl targets the same kinds in other words;
tests/test_training_data.py keeps it free of copies of this file). Measured
2026-12-02: intent 200/241 before intents_asking2.jsonl and priority.yaml's
not_hazard, 223/241 after; questions taken for complaints 12 -> 7 (5 of them the
safety rule: a hazard word with a bare 了 or 家里 is read as lived now, by
design), complaints taken for questions 13 -> 2. The bars sit a little below.
2026-12-03: intents_asking3.jsonl (questions that sound like complaints) took complaints
answered 2 -> 11; intents_complaint_questions.jsonl (complaints worded as questions) brought
it to 7, and intents.yaml `demand_words` ("管管", "有没有人管", "什么时候处理": asking for something
to be dealt with) to 4, with intent 226/241 and questions ticketed 6.
"""
from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT

PROBE = ROOT / "tests" / "data" / "asking_probe.jsonl"
MIN_ACCURACY = 0.90
MAX_COMPLAINTS_ANSWERED = 4
MAX_QUESTIONS_TICKETED = 9


@pytest.fixture(scope="module")
def routed():
    from handlers.router import route

    rows = [json.loads(line) for line in PROBE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r, route(r["text"]).intent) for r in rows]


def test_the_probe_is_what_it_says():
    rows = [json.loads(line) for line in PROBE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 230 and {r["intent"] for r in rows} <= {"faq", "complaint", "booking", "membership", "handoff"}
    assert sum(r["intent"] == "faq" for r in rows) >= 130 and sum(r["intent"] == "complaint" for r in rows) >= 95
    assert len({r["text"] for r in rows}) == len(rows)


def test_intent_accuracy(routed):
    wrong = [(r["intent"], got, r["text"]) for r, got in routed if got != r["intent"]]
    assert 1 - len(wrong) / len(routed) >= MIN_ACCURACY, wrong


def test_complaints_worded_as_questions_stay_complaints(routed):
    answered = [r["text"] for r, got in routed if r["intent"] == "complaint" and got == "faq"]
    assert len(answered) <= MAX_COMPLAINTS_ANSWERED, answered


def test_questions_with_a_problem_in_them_are_not_ticketed(routed):
    ticketed = [r["text"] for r, got in routed if r["intent"] == "faq" and got == "complaint"]
    assert len(ticketed) <= MAX_QUESTIONS_TICKETED, ticketed
