"""Understanding owners: knowledge base, normalization, matcher, classifier,
hot reload, misses. The labelled cases live in tests/data/route_cases.jsonl
(same format as shared/eval/route_dev.jsonl) and must all pass."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SHARED

CASES = ROOT / "tests" / "data" / "route_cases.jsonl"
DEV = SHARED / "eval" / "route_dev.jsonl"


@pytest.fixture(scope="module")
def router():
    from handlers.router import route

    route("你好")  # loads capabilities, jieba and the index once for the module
    return route


# --- labelled cases ---------------------------------------------------------------

def test_own_cases_all_pass(router):
    from handlers.evaluate import evaluate, load_cases, render

    cases = load_cases(CASES)
    assert len(cases) >= 200
    rep = evaluate(cases)
    assert not rep.gating_failures(), render(rep)


def test_own_cases_cover_owner_writing():
    from faq.normalize import clean

    texts = [json.loads(x)["text"] for x in CASES.read_text(encoding="utf-8").splitlines() if x.strip()]
    assert sum(1 for t in texts if clean(t) != t.lower().replace(" ", "")) >= 30  # traditional/full-width/emoji/spaces
    assert any(any(0x1F300 <= ord(ch) <= 0x1FAFF for ch in t) for t in texts)
    assert any(any(0xFF01 <= ord(ch) <= 0xFF5E for ch in t) for t in texts)
    assert sum(1 for t in texts if any(ch in t for ch in "會銀費級條對處")) >= 8


@pytest.mark.skipif(not DEV.exists(), reason="shared dev set not present")
def test_dev_set_intent_priority_answer(router):
    from handlers.evaluate import evaluate, load_cases, render

    cases = load_cases(DEV)
    rep = evaluate(cases)
    assert not rep.gating_failures(), render(rep)
    # Stricter than the dev set asks: FAQ questions are answered outright, not by a clarifying menu.
    for c in cases:
        if c["expect"].get("intent") == "faq":
            assert router(c["text"]).faq_id, c["text"]


@pytest.mark.skipif(not DEV.exists(), reason="shared dev set not present")
def test_dev_cases_are_not_kb_phrasings():
    """The dev set measures generalization: none of its texts may be in the KB."""
    from faq.kb import load
    from faq.normalize import clean

    kb = load()
    phrasings = {clean(q) for e in kb.entries for q in (e.title, *e.questions)}
    dev = [json.loads(x)["text"] for x in DEV.read_text(encoding="utf-8").splitlines() if x.strip()]
    assert not [t for t in dev if clean(t) in phrasings]


# --- knowledge base -----------------------------------------------------------------

def test_kb_size_and_shape():
    from faq.kb import load

    kb = load()
    assert len(kb.entries) >= 80
    for e in kb.entries:
        assert len(e.questions) >= 2 and e.answer and e.tags and e.source, e.id
    tags = {t for e in kb.entries for t in e.tags}
    for topic in ("银卡", "金卡", "降级", "紧急", "首问负责制", "回访", "入群", "群规", "禁言", "业主档案", "物业费", "空置",
                  "欠费", "满意度", "座谈会", "保修期", "节日祝福", "服务中心", "特殊贡献"):
        assert topic in tags, topic


def _kb_copy(tmp_path: Path) -> Path:
    from faq.kb import DATA_DIR

    d = tmp_path / "kb"
    shutil.copytree(DATA_DIR, d)
    return d


@pytest.mark.parametrize("mutate, expect", [
    (lambda e: e.pop("answer"), "membership.yaml: entry member-tiers: field answer"),
    (lambda e: e.__setitem__("questions", ["只有一个"]), "membership.yaml: entry member-tiers: field questions"),
    (lambda e: e.__setitem__("questions", ["好的", ""]), "membership.yaml: entry member-tiers: field questions[1]"),
    (lambda e: e.__setitem__("id", "Bad Id"), "membership.yaml: entry #1: field id"),
    (lambda e: e.__setitem__("sorce", "x"), "membership.yaml: entry member-tiers: field sorce: unknown field"),
    (lambda e: e.__setitem__("id", "member-join"), "membership.yaml: entry member-join: field id: duplicate"),
])
def test_kb_errors_name_file_entry_field(tmp_path, mutate, expect):
    from faq.kb import KBError, load

    d = _kb_copy(tmp_path)
    f = d / "membership.yaml"
    data = yaml.safe_load(f.read_text(encoding="utf-8"))
    mutate(data["entries"][0])
    f.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(KBError) as err:
        load(d)
    assert expect in str(err.value)


def test_kb_invalid_yaml_names_file(tmp_path):
    from faq.kb import KBError, load

    d = _kb_copy(tmp_path)
    (d / "group.yaml").write_text("entries: [\n  - id: x\n", encoding="utf-8")
    with pytest.raises(KBError, match="group.yaml: is not valid YAML"):
        load(d)


def test_hot_reload_without_restart(tmp_path, monkeypatch):
    import faq.kb
    from faq.matcher import Matcher

    monkeypatch.setattr(faq.kb, "CHECK_EVERY", 0.0)
    monkeypatch.setenv("GUANJIA_VAR_DIR", str(tmp_path / "var"))  # index cache of this throwaway KB
    d = _kb_copy(tmp_path)
    m = Matcher(d)
    assert m.best("小区游泳馆可以带宠物狗进去吗") is None or m.best("小区游泳馆可以带宠物狗进去吗").id != "pool-pets"

    extra = {"entries": [{"id": "pool-pets", "title": "泳池能带宠物吗", "questions": ["游泳池能带宠物吗", "宠物可以进泳池吗"],
                          "answer": "为了卫生和安全，宠物不能进入游泳池区域哦。", "tags": ["游泳池", "宠物"], "source": "管理规约"}]}
    f = d / "extra.yaml"
    f.write_text(yaml.safe_dump(extra, allow_unicode=True), encoding="utf-8")
    hit = m.best("小区游泳馆可以带宠物狗进去吗")
    assert hit is not None and hit.id == "pool-pets"

    # A broken edit keeps the last good knowledge base in service and says why.
    f.write_text("entries:\n  - id: pool-pets\n    title: 缺字段\n", encoding="utf-8")
    os.utime(f, (time.time() + 5, time.time() + 5))
    hit = m.best("小区游泳馆可以带宠物狗进去吗")
    assert hit is not None and hit.id == "pool-pets"
    assert "extra.yaml: entry pool-pets: field answer" in m.store.last_error


# --- normalization and matching ---------------------------------------------------------

def test_normalization():
    from faq.normalize import Rewriter, canonical, clean

    assert clean("ＶＩＰ群 怎么進？") == "vip群怎么进?"
    assert clean("銀卡會員權益🙏🏻👍") == "银卡会员权益"
    assert clean("[捂脸]物业费") == "物业费"
    rw = Rewriter({"升级": ["神级"], "物业费": ["管理费"], "银卡": ["白银", "银卡会员"], "居住": ["住满"]})
    assert canonical("白银怎么神级", rw) == "银卡怎么升级"
    assert canonical("管理費", rw) == "物业费"
    assert canonical("銀卡會員", rw) == "银卡"
    assert canonical("连续居住满2年", rw) == "连续居住满2年"  # a variant inside a canonical word is left alone


def test_jieba_domain_dictionary():
    from faq import matcher

    words, _ = matcher.default().index().tokens("可以在微信上报修吗，首问负责制是什么")
    assert "微信" in words and "报修" in words and "首问负责制" in words


def test_best_api_for_other_capabilities():
    from faq import matcher

    m = matcher.best("銀卡會員有啥福利😀")
    assert m is not None and m.id == "member-silver-benefits" and 0 < m.score <= 1 and "8折" in m.answer
    assert matcher.best("明天股市会涨吗") is None
    assert [x.id for x in matcher.search("银卡升金卡", 3)][0] == "member-gold-upgrade"


def test_route_contract_fields_and_why(router):
    r = router("银卡有哪些权益").contract()
    assert list(r) == ["intent", "priority", "category", "faq_id", "score", "answer", "violation", "action", "why"]
    assert r["intent"] == "faq" and r["faq_id"] == "member-silver-benefits"
    assert "member-silver-benefits" in r["why"] and "score" in r["why"] and "银卡" in r["why"]
    c = router("我家水管爆了 快来人").contract()
    assert (c["intent"], c["priority"], c["category"]) == ("complaint", "urgent", "repair")
    assert "水管爆" in c["why"] and "urgent" in c["why"]


def test_low_confidence_clarifies_or_hands_off(router):
    r = router("会员卡掉了能补办吗")
    assert r.intent in ("faq", "handoff") and r.faq_id is None and r.answer
    if r.intent == "faq":
        assert r.args["clarify"] and "1." in r.answer
    # Off-topic: handed off with a polite word, never a rule from the KB.
    from faq.kb import load

    off = router("帮我查一下明天的航班")
    assert off.intent in ("handoff", "smalltalk") and off.faq_id is None and off.answer
    assert off.answer not in {e.answer for e in load().entries}


def test_group_chatter_is_left_alone(router):
    r = router("今晚的月亮真圆", "vip")
    assert r.intent == "smalltalk" and r.answer is None


def test_route_is_pure_without_database(router, monkeypatch):
    """route() must not touch the store: it works with no database configured."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    from store.db import reset_engine

    reset_engine()
    try:
        assert router("这个问题没人能回答吧 火星上有物业吗").intent in ("handoff", "faq")
    finally:
        reset_engine()


# --- handlers: replies and recorded misses ------------------------------------------------

def _handle(session, text, sender="o-faq-1", chat="private"):
    from ground import clock
    from handlers.dispatch import handle
    from handlers.message import Context, Message

    return handle(Context(session, clock.now()), Message(channel="mp", sender=sender, chat=chat, text=text, role="owner"))


def test_handoff_records_miss_and_cli_lists_it(env, session):
    from click.testing import CliRunner
    from sqlalchemy import select

    from bot.cli import main
    from store.models.faq import FaqMiss

    # A question the KB has no entry for (a nearby kindergarten was one, until the gold tier's
    # "推荐优质教育机构" came close enough to answer it).
    out = _handle(session, "小区有没有共享单车停放点")
    assert out.intent in ("handoff", "faq") and out.replies
    out2 = _handle(session, "银卡有哪些权益")
    assert out2.intent == "faq" and "8折" in out2.replies[0]
    session.commit()
    rows = list(session.scalars(select(FaqMiss)))
    assert len(rows) == 1 and rows[0].text == "小区有没有共享单车停放点" and rows[0].kind in ("handoff", "clarify", "unsure")

    res = CliRunner().invoke(main, ["faq", "misses"])
    assert res.exit_code == 0, res.output
    assert "共享单车" in res.output and f"#{rows[0].id}" in res.output
    res = CliRunner().invoke(main, ["faq", "resolve", str(rows[0].id)])
    assert res.exit_code == 0 and "1 marked resolved" in res.output
    assert "no unanswered questions" in CliRunner().invoke(main, ["faq", "misses"]).output


def test_clarify_then_pick_a_number(env, session):
    from faq import matcher
    from handlers import understanding

    text = "权益"  # one word fits every tier's benefits: the bot offers the topics
    r = understanding.classify(text)
    assert r.intent == "faq" and r.faq_id is None and len(r.args["clarify"]) >= 2
    out = _handle(session, text, sender="o-faq-2")
    assert "1." in out.replies[0]
    pick = _handle(session, "1", sender="o-faq-2")
    first = matcher.default().index().kb.by_id[r.args["clarify"][0]]
    assert pick.replies == [first.answer]


def test_faq_cli_eval_prints_accuracy_and_failures(tmp_path):
    from click.testing import CliRunner

    from bot.cli import main

    f = tmp_path / "cases.jsonl"
    f.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in [
        {"id": "a", "text": "银卡有什么权益", "expect": {"intent": "faq", "answer_any": ["8折"]}},
        {"id": "b", "text": "楼上吵死了", "expect": {"intent": "complaint", "priority": ["urgent"]}},
    ]), encoding="utf-8")
    res = CliRunner().invoke(main, ["faq", "eval", str(f)])
    assert res.exit_code == 1
    assert "intent" in res.output and "100.0%" in res.output and "[b] priority" in res.output


def test_heldout_floor(router):
    """tests/data/faq_heldout.jsonl was written before tuning (it measures
    generalization). Keep a floor: most questions answered right or clarified
    with the right topic offered, nothing off-topic answered, few wrong answers."""
    good = wrong = offtopic_answered = n = 0
    for line in (ROOT / "tests" / "data" / "faq_heldout.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        c = json.loads(line)
        exp = c["faq_id"] if isinstance(c["faq_id"], list) else [c["faq_id"]]
        r = router(c["text"])
        if exp == [None]:
            offtopic_answered += r.faq_id is not None
            continue
        n += 1
        if r.faq_id:
            good += r.faq_id in exp
            wrong += r.faq_id not in exp
        elif any(x in exp for x in r.args.get("clarify", [])) or None in exp:
            good += 1
    # Written against a 95-entry KB: since the KB grew (289 entries) a few of its "nothing
    # answers this" questions get a related entry (养几只狗 -> the pet rules, 经理电话 -> the
    # hotline, 收快递 -> the delivery rules); 业委会什么时候换届 has its own entry now and was
    # relabelled. At most those 3 of the 6 may.
    assert offtopic_answered <= 3
    assert good >= 0.85 * n and wrong <= 2, (good, wrong, n)


def test_index_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    import faq.kb
    from faq.matcher import Matcher, _cache_file

    monkeypatch.setattr(faq.kb, "CHECK_EVERY", 0.0)
    monkeypatch.setenv("GUANJIA_VAR_DIR", str(tmp_path / "var"))
    d = _kb_copy(tmp_path)
    assert Matcher(d).best("银卡有哪些权益").id == "member-silver-benefits"
    assert _cache_file(d).exists()
    again = Matcher(d)  # a restart: the cached index answers the same
    assert again.best("银卡有哪些权益").id == "member-silver-benefits"
    f = d / "membership.yaml"
    f.write_text(f.read_text(encoding="utf-8").replace("银卡会员的权益", "银卡会员的全部权益"), encoding="utf-8")
    os.utime(f, (time.time() + 10, time.time() + 10))
    assert Matcher(d).best("银卡有哪些权益").entry.title == "银卡会员的全部权益"


@pytest.mark.parametrize("word", ["宠物", "停车", "物业费", "装修", "权益"])
def test_one_topic_word_gets_that_topics_entries_not_a_ticket_or_chatter(router, word):
    """Owners often type just the topic: the bot offers the entries about it (or the one),
    never a 3-working-day ticket nor "祝您今天心情愉快"."""
    r = router(word)
    assert r.intent == "faq", (word, r.intent, r.why)
    ids = r.args.get("clarify") or [r.faq_id]
    assert ids and all(i for i in ids), r
    assert 2 <= len(ids) <= 3 or r.faq_id, r


@pytest.mark.parametrize("word", ["漏水", "着火了", "停电了"])
def test_one_word_that_reports_a_problem_stays_a_report(router, word):
    r = router(word)
    assert r.intent == "complaint" and r.priority == "urgent", (word, r.intent, r.priority, r.why)


def test_a_fairly_sure_answer_is_hedged_and_listed_for_managers(env, session, monkeypatch):
    """Between "sure" and "nothing fits", the owner gets the best entry with a way to a
    person, and managers see the question among those to check (已答复待核对)."""
    from sqlalchemy import select

    from bot.console import labels
    from faq import retrieval
    from store.models.faq import FaqMiss

    # Raise the bar for "sure" so an ordinary question falls in the hedge band.
    monkeypatch.setattr(retrieval, "P_ANSWER", 0.999)
    out = _handle(session, "银卡有哪些权益", sender="o-faq-3")
    assert out.intent == "faq" and "8折" in out.replies[0]
    assert "如果这不是您想问的" in out.replies[0] and "「人工」" in out.replies[0] and "10分钟内" in out.replies[0]
    session.commit()
    [miss] = list(session.scalars(select(FaqMiss).where(FaqMiss.sender == "o-faq-3")))
    assert miss.kind == "unsure" and miss.best_id == "member-silver-benefits"
    assert labels.word("miss_kinds", miss.kind) == "已答复待核对"


def test_a_question_about_something_the_kb_lacks_is_not_hedged(router):
    r = router("请问小区附近有没有好的钢琴老师推荐")  # shares only 附近/推荐 with an entry
    assert r.faq_id is None and not r.args.get("hedge")


@pytest.mark.parametrize("text, entry", [
    ("你好 刚在电梯里看到贴了通知说后天要停水 我家有老人 想问停多久 要不要提前接点水", "utility-planned-water"),
    ("业主群发了通知说周末要停电检修 我们家冰箱东西多 大概几点恢复啊", "utility-planned-power"),
])
def test_a_planned_outage_asked_about_in_a_run_on_is_answered_not_a_ticket(router, text, entry):
    # The worst page: an outage asked about must not open an urgent repair.
    r = router(text).contract()
    assert (r["intent"], r["faq_id"], r["priority"]) == ("faq", entry, None), r["why"]


@pytest.mark.parametrize("text", [
    "通知说今天停水 可是现在已经停了一整天还没来水",   # the outage is happening now: a report
    "dian ti li kun zhu ren le, 3 dong",               # trapped, in pinyin
    "wo jia shui guan bao le",                         # burst pipe, in pinyin
])
def test_an_outage_happening_now_or_a_hazard_in_pinyin_is_urgent(router, text):
    r = router(text).contract()
    assert (r["intent"], r["priority"]) == ("complaint", "urgent"), r["why"]


@pytest.mark.parametrize("text, intent", [
    ("地库里那辆僵尸车停了半年了 你们打算什么时候处理？", "complaint"),   # asks for it to be dealt with
    ("楼下棋牌室天天吵到半夜，能不能管管？", "complaint"),
    ("下水道堵了归物业管还是自己找人修？", "faq"),                          # who is responsible: a question
])
def test_asking_for_something_to_be_dealt_with_is_a_complaint(router, text, intent):
    r = router(text)
    assert r.intent == intent, (text, r.why)


def test_one_topic_word_named_by_one_entrys_title_gets_that_entry_not_a_menu(router):
    # "客服热线" is in one entry's title and in another's phrasing: the title decides.
    r = router("客服热线")
    assert r.faq_id == "hotline" and not r.args.get("clarify"), r.why
