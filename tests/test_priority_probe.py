"""Complaint priority on fresh owner phrasing (tests/data/priority_probe.jsonl).

The probe was written blind (before the priority lexicon, the training data and the
understanding code were read; see its commit): ~115 urgent reports in many styles
(colloquial, voice-to-text run-ons, typos and homophones, traditional characters, English,
Cantonese, told by their effect only, polite, angry, with a story first), ~53 important or
general complaints that share words with a hazard, and ~67 questions about a hazard, an
outage or a rule that must stay questions (RULES.md "Request classes").

The worst error the product can make is a real urgent case graded lower: none is allowed.
The other bars sit a little below what was measured on 2026-12-02 (intent 94.5%, priority
on complaints 95.8%); the FAQ lines the bot hands to a person (no KB entry fits) count as
intent misses here, though they open no ticket.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

PROBE = Path(__file__).resolve().parent / "data" / "priority_probe.jsonl"
INTENT_MIN = 0.93
PRIORITY_MIN = 0.93
# Questions the bot may still turn into a ticket (a hazard word with 了, taken for a report).
# 6 after the asking and urgent branches were merged (2 on the urgent branch alone). Two of them
# are safety-first by design, and a person reads them at once: "电梯突然停了人在里面应该怎么办"
# and "闻到煤气味应该怎么处理" may be happening now.
QUESTIONS_TICKETED_MAX = 6


@pytest.fixture(scope="module")
def graded():
    from handlers.router import route

    rows = [json.loads(x) for x in PROBE.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [(r, route(r["text"])) for r in rows]


def test_probe_is_the_blind_set_described():
    rows = [json.loads(x) for x in PROBE.read_text(encoding="utf-8").splitlines() if x.strip()]
    assert len(rows) >= 220
    assert sum(r["priority"] == "urgent" for r in rows) >= 110
    assert sum(r["intent"] == "faq" for r in rows) >= 60
    assert all(set(r) == {"text", "intent", "priority", "note"} for r in rows)


def test_no_urgent_report_graded_below_urgent(graded):
    low = [(r["text"], res.intent, res.priority, res.why) for r, res in graded
           if r["priority"] == "urgent" and (res.intent != "complaint" or res.priority != "urgent")]
    assert not low, low


def test_no_ordinary_complaint_graded_urgent(graded):
    """Grading a dripping tap urgent pages the repair team at night."""
    high = [(r["text"], res.priority, res.why) for r, res in graded
            if r["intent"] == "complaint" and r["priority"] != "urgent" and res.priority == "urgent"]
    assert not high, high


def test_intent_and_priority_accuracy(graded):
    intent_ok = sum(res.intent == r["intent"] for r, res in graded) / len(graded)
    complaints = [(r, res) for r, res in graded if r["intent"] == "complaint"]
    prio_ok = sum(res.intent == "complaint" and res.priority == r["priority"] for r, res in complaints) / len(complaints)
    assert intent_ok >= INTENT_MIN, intent_ok
    assert prio_ok >= PRIORITY_MIN, prio_ok


def test_questions_about_a_hazard_stay_questions(graded):
    ticketed = [(r["text"], res.priority, res.why) for r, res in graded
                if r["intent"] == "faq" and res.intent == "complaint"]
    assert len(ticketed) <= QUESTIONS_TICKETED_MAX, ticketed


# --- tests/data/priority_probe2.jsonl ---------------------------------------------------------
# Written 2026-12-07 by a helper who read only RULES.md, the seeds and the first three lines of
# the probe above (100 urgent, 60 important or general, 60 questions; 214 after the 6 lines that
# share 45% or more of their character bigrams with a training line or a KB phrasing were
# dropped, as for the wild probes). Measured once at 9b40113 before anything was changed for it
# (figures on the 214): 4 urgent reports graded general (a switch too hot to
# touch with a smell of burning plastic, a child locked in a toilet in Cantonese, a break-in
# going on, a dog that had bitten a child), 6 more graded important (things about to fall where
# people pass), intent 89.3%, priority 84.0%, 15 questions ticketed. The round that followed
# (priority.yaml patterns and not_hazard spans marked "priority_probe2") makes it a dev set:
# none graded general, intent 93.0%, priority 90.4%, 6 questions ticketed. One urgent label is
# not followed on purpose: a balcony railing "松了 晃得厉害" over a road is important, as a
# loose tile swaying over a path is in wild3 (loose is a hazard to fix within the hour; falling
# or hanging by a thread is urgent).
PROBE2 = Path(__file__).resolve().parent / "data" / "priority_probe2.jsonl"


@pytest.fixture(scope="module")
def graded2():
    from handlers.router import route

    rows = [json.loads(x) for x in PROBE2.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [(r, route(r["text"])) for r in rows]


def test_probe2_no_urgent_report_graded_general_or_left_untold(graded2):
    low = [(r["text"], res.intent, res.priority, res.why) for r, res in graded2
           if r["priority"] == "urgent" and (res.intent != "complaint" or res.priority == "general")]
    assert not low, low


def test_probe2_intent_priority_and_questions(graded2):
    intent_ok = sum(res.intent == r["intent"] for r, res in graded2) / len(graded2)
    complaints = [(r, res) for r, res in graded2 if r["intent"] == "complaint"]
    prio_ok = sum(res.intent == "complaint" and res.priority == r["priority"] for r, res in complaints) / len(complaints)
    ticketed = [r["text"] for r, res in graded2 if r["intent"] == "faq" and res.intent == "complaint"]
    assert intent_ok >= 0.91 and prio_ok >= 0.88, (intent_ok, prio_ok)
    assert len(ticketed) <= 8, ticketed
