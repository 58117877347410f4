"""Fresh Chinese owner phrasing, answered with the right fact.

tests/data/zh_fresh_probe.jsonl (79 questions over 79 entries: colloquial, typos,
traditional characters, voice run-ons, stories, anger, dialect) was written on
2026-12-03 by a helper who read only the entries' ids, titles and answers, never their
phrasings, the training data or the evaluation sets (one line near a training line was
dropped). Measured once and not tuned on (`guanjia faq eval
tests/data/zh_fresh_probe.jsonl --baseline-nn`): answers 72/79 (91.1%), the same as a
plain nearest neighbour (73/79 before the English gloss: a near tie flipped); intent 92.4%, every miss an angry or
rhetorical question ("物业费说涨就涨啊？") taken for a complaint. The bars sit a little below.
Since tuned on (dev): with the dialect table and two training batches, answers 75/79, intent 97.5%.

tests/data/wild_probe.jsonl (205 lines over every intent, 173 after 30 that repeat training
or KB phrasings were dropped) was written the same way on 2026-12-03 and measured first
against main as it was that morning: intent 94.2%, priority 92.4% with one urgent case
(a lift entrapment in pinyin) graded general, answers 88.2% against a plain nearest
neighbour's 98.8% (its questions came from the answers' own words). Its misses then led to
the planned-outage, pinyin and training-batch work (the brief quoted some of its patterns),
so it is a dev set: 97.1%, 97.7% with none graded general, 95.3%.

tests/data/wild2_probe.jsonl (176 lines, 152 after 24 that came near training or KB
phrasings were dropped; FAQ questions written from the seeds, the KB's ids and titles only
to label them) was measured once at the end of that day's work and is not tuned on: against
that morning's main intent 94.1%, priority 96.7%, answers 89.6% (= NN); at the end 95.4%,
96.7% (no urgent case graded general), 90.9% against NN's 88.3%. The bars sit a little below.

tests/data/wild3_probe.jsonl (180 lines written the evening of 2026-12-03 the same way, FAQ
questions written before the helper looked at any answer; 144 after 36 that share 45% or more
of their character bigrams with a training line or a KB phrasing were dropped) was measured
once at d443f3e before anything was changed for it: intent 95.8%, priority 93.9% (no urgent
case graded general; 5 of the 7 misses graded higher than the label), answers 91.7% against
NN's 88.9%. Its priority misses (a fire only imagined, an injury only feared or days old, the
fire equipment named, a stairwell light) then led to the not_hazard spans of that evening, so
for priority it is a dev set (98.3% since); intent and answers are not tuned on.

tests/data/wild4_probe.jsonl (200 lines written 2026-12-03 late evening the same way; 155
after 45 near copies were dropped) was measured once at 29ace46 before anything was changed
for it: intent 92.9%, priority 95.5% with one urgent case graded general (a line in pinyin:
no water at all, a child not yet bathed), answers 85.7% against NN's 90.0%. Six of its misses
were lines typed in toneless pinyin; the pinyin reader (faq/pinyin.py), written before this
probe was seen and not tuned on it, took it to 96.8%, 98.1% (none graded general), answers
90.0% (= NN). Then two of its misses led to work, so it is a dev set for intent and priority
since: 了 inside 了解 was read as "it happened" (priority.yaml not_reporting) and personal
look-ups were taken for membership (training batch intents_lookups.jsonl): 99.4%, 98.7%,
answers 91.4% (NN 90.0%). Answers were not tuned on.

tests/data/wild5_probe.jsonl (200 lines written the same way late on 2026-12-03, with dialect
and about ten pinyin lines; 169 after 31 near copies were dropped) was measured once at
70c150a (after the pinyin reader and the look-ups batch): intent 93.5%, priority 92.9% (none graded
general), answers 85.9% (= NN). Its misses then led to two changes, so it is a dev set since:
a pinyin word may not end inside a run typed as one ("li keyi" is 里 可以, not 立刻 一), and
asking whether one may do something ("我放个鞋柜行不行", intents.yaml permission_asks) is a
question, not a ticket: 95.3%, 94.7%, 89.7% (NN 85.9%).

tests/data/wild6_probe.jsonl (190 lines written 2026-12-07 the same way; the 20 lines a first
near-copy check dropped were reworded by the helper, so all 190 pass it) was measured once at
6b61a6b before anything was changed for it: intent 95.3%, priority 95.8% (none graded general),
answers 82.4% against NN's 71.8% (+10.6). Two of its misses led to work, so it is a dev set for
intent since: a question for a number ("客服電話係幾多號") is answered even when the model leans to a
hand-off, "是真人还是机器人" asks about the bot; and the pinyin index had been built after the
matcher added the KB's words to jieba ("gou ma" read 鉤嗎), now built from jieba as shipped:
96.3%, 95.8%, 84.7%. Answers were not tuned on; its bar for them sits lower.

tests/data/wild7_probe.jsonl (200 lines written 2026-12-07 to be harder: a story before the
point, two topics in one message, indirect questions; 188 after one near-copy pass, no line
reworded) was measured once at fb84303: intent 89.9%, priority 87.8% (none graded general),
answers 80.5% against NN's 79.3%. 14 of its questions were taken for complaints; the training
batch intents_story_questions.jsonl (the same shape, written without seeing the probe) took it
to 92.0%, 89.9%, 85.4%, so it is a dev set for intent since.

tests/data/wild8_probe.jsonl (200 lines written 2026-12-07 after that batch, from a broad mix of
owners: elderly voice-to-text, young renters, parents, foreigners, dialects; 179 after one
near-copy pass) was measured once at 2a0393a: intent 92.7%, priority 96.1% (none graded
general), answers 81.8% against NN's 84.4% (-2.6). A few general gaps it showed were closed
(吃了没 as a greeting, 换个人 after "你听不懂" as asking for a person, 真遇上 as a what-if, 每次停水
as asking about outages): 94.4%, 97.8%, 83.1%. Answers were not tuned on.
"""
from __future__ import annotations

import pytest

from tests.conftest import ROOT

PROBE = ROOT / "tests" / "data" / "zh_fresh_probe.jsonl"
WILD = ROOT / "tests" / "data" / "wild_probe.jsonl"
WILD2 = ROOT / "tests" / "data" / "wild2_probe.jsonl"
WILD3 = ROOT / "tests" / "data" / "wild3_probe.jsonl"
WILD4 = ROOT / "tests" / "data" / "wild4_probe.jsonl"
WILD5 = ROOT / "tests" / "data" / "wild5_probe.jsonl"
WILD6 = ROOT / "tests" / "data" / "wild6_probe.jsonl"
WILD7 = ROOT / "tests" / "data" / "wild7_probe.jsonl"
WILD8 = ROOT / "tests" / "data" / "wild8_probe.jsonl"
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


@pytest.fixture(scope="module")
def wild():
    from handlers.evaluate import evaluate, load_cases

    return evaluate(load_cases(WILD))


def test_wild_probe_intent_priority_and_answers(wild):
    def rate(f: str) -> float:
        return wild.passed[f] / wild.checked[f]

    wrong = [(f["id"], f["field"], f["text"]) for f in wild.failures if f["field"] in ("intent", "priority", "answer")]
    assert rate("intent") >= 0.95 and rate("priority") >= 0.95 and rate("answer") >= 0.92, wrong
    assert not wild.urgent_as_general, wild.urgent_as_general  # the worst error: a hazard graded general


@pytest.mark.parametrize("path, min_answers, min_rate", [
    (WILD2, 0.88, 0.93), (WILD3, 0.88, 0.93), (WILD4, 0.88, 0.93), (WILD5, 0.88, 0.93), (WILD6, 0.82, 0.93),
    (WILD7, 0.82, 0.88), (WILD8, 0.80, 0.91)], ids=["wild2", "wild3", "wild4", "wild5", "wild6", "wild7", "wild8"])
def test_wild_probes_never_tuned_on(path, min_answers, min_rate):
    from handlers.evaluate import evaluate, load_cases

    rep = evaluate(load_cases(path))
    rate = {f: rep.passed[f] / rep.checked[f] for f in ("intent", "priority", "answer")}
    wrong = [(f["id"], f["field"], f["text"]) for f in rep.failures if f["field"] in rate]
    assert rate["intent"] >= min_rate and rate["priority"] >= min_rate and rate["answer"] >= min_answers, (rate, wrong)
    assert not rep.urgent_as_general, rep.urgent_as_general
