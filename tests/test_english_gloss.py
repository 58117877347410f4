"""Owners who write in English (or mix it in) are answered from the Chinese knowledge
base: the lexicon's `english` section reads their words as the KB's before matching.

tests/data/english_probe.jsonl (69 English or code-mixed questions over 69 entries, 10
off-topic English lines; one line that came near a training line was dropped) was written by a helper who saw neither the glossary nor the
evaluation and training sets, after the glossary was written and before it was measured;
it has not been tuned on. Measured 2026-12-03 with `guanjia faq eval
tests/data/english_probe.jsonl --baseline-nn`: before the gloss, answers 50/69 (72.5%),
14.5 points under a plain nearest neighbour (60/69) and intent 89.9%; with it, answers
61/69 (88.4%) and intent 97.5%. The bars sit a little below.
"""
from __future__ import annotations

import pytest

from tests.conftest import ROOT

PROBE = ROOT / "tests" / "data" / "english_probe.jsonl"
MIN_ANSWERS = 0.85
MIN_INTENT = 0.95


def _gloss():
    from faq.normalize import EnglishGloss

    return EnglishGloss({"物业费": ["property fee", "management fee"], "门禁卡": ["access card"], "会员": ["member"],
                         "车辆": ["car"]}, ["how", "do", "i", "the", "a", "pay"])


def test_whole_words_and_phrases_any_case_plural_and_longest_first():
    g = _gloss()
    assert g("How do I pay the Property-Fees?").split() == ["物业费", "?"]
    assert g("lost my ACCESS  CARD").split() == ["lost", "my", "门禁卡"]  # not 车辆 for "card"
    assert g("members only").split() == ["会员", "only"]
    assert g("scary carpet").split() == ["scary", "carpet"]  # no word inside another
    assert g("小区parking和car怎么收费").replace(" ", "") == "小区parking和车辆怎么收费"


def test_chinese_text_is_left_as_it_is():
    g = _gloss()
    for t in ("物业费怎么交", "小区游泳馆可以带宠物狗进去吗", "１２３"):
        assert g(t) == t


def test_the_lexicon_refuses_a_bare_yes_or_no(tmp_path):
    import shutil

    from faq.kb import DATA_DIR, KBError, load

    d = tmp_path / "kb"
    shutil.copytree(DATA_DIR, d)
    lex = d / "lexicon.yaml"
    lex.write_text(lex.read_text(encoding="utf-8").replace("'no', 'yes'", "no, yes"), encoding="utf-8")
    with pytest.raises(KBError, match="english_stopwords.*put it in quotes"):
        load(d)


def test_the_lexicon_refuses_chinese_on_the_english_side(tmp_path):
    import shutil

    from faq.kb import DATA_DIR, KBError, load

    d = tmp_path / "kb"
    shutil.copytree(DATA_DIR, d)
    lex = d / "lexicon.yaml"
    text = lex.read_text(encoding="utf-8").replace("  停车: [parking, park, parked]", "  停车: [parking, 泊车]")
    lex.write_text(text, encoding="utf-8")
    with pytest.raises(KBError, match="english.*not an English word or phrase: '泊车'"):
        load(d)


@pytest.fixture(scope="module")
def report():
    from handlers.evaluate import evaluate, load_cases

    return evaluate(load_cases(PROBE))


def test_english_questions_are_answered_with_the_right_fact(report):
    wrong = [(f["id"], f["text"], f["problem"]) for f in report.failures if f["field"] == "answer"]
    assert report.checked["answer"] >= 69
    assert report.passed["answer"] / report.checked["answer"] >= MIN_ANSWERS, wrong


def test_english_intent_and_off_topic(report):
    wrong = [(f["id"], f["text"], f["problem"]) for f in report.failures if f["field"] == "intent"]
    assert report.passed["intent"] / report.checked["intent"] >= MIN_INTENT, wrong
    off = [f for f in report.failures if f["field"] == "intent" and str(f["id"]).startswith("en-off")]
    assert not off, off  # no off-topic English question answered with a rule
