"""Owners who write Cantonese, Sichuanese, northern or Shanghainese words are read as
Mandarin before anything understands them (faq/data/dialect.yaml, faq.normalize.clean),
and ordinary Mandarin comes out as it went in."""
from __future__ import annotations

import pytest

from faq import normalize
from faq.normalize import clean, load_dialect
from ground.rules import RulesError
from handlers.router import route


@pytest.mark.parametrize("text, mandarin", [
    ("物业费点样交", "物业费怎么交"),
    ("夜晚有咩事搵边个", "夜晚有什么事找谁"),
    ("停车场喺边度", "停车场在哪里"),
    ("可唔可以养狗", "可不可以养狗"),
    ("泳池几时开", "泳池什么时候开"),
    ("咋个办嘛 屋头莫得热水", "怎么办嘛家里没有热水"),
    ("阿拉小区电梯坏了 侬晓得伐", "我们小区电梯坏了你知道伐"),
    ("唔该晒", "谢谢"),
    ("點樣報修", "怎么报修"),  # traditional first, then the dialect word
])
def test_dialect_words_read_as_mandarin(text, mandarin):
    assert clean(text) == mandarin


@pytest.mark.parametrize("text", [
    "我地下室漏水了", "系统显示已缴费", "和邻居关系很好", "在宜家买的柜子", "哐啷一声 好像什么掉了",
    "今天几点停水", "他们好久没来打扫了", "点一下链接就能交费",
])
def test_ordinary_mandarin_is_left_alone(text):
    assert clean(text) == normalize._plain(text).replace(" ", "")


def test_a_cantonese_question_gets_the_same_answer_as_its_mandarin_twin():
    for canto, mandarin in [("物业费点样交啊", "物业费怎么交啊"), ("会所泳池几时开门", "会所泳池什么时候开门"),
                            ("装修可唔可以喺礼拜日做", "装修可不可以在礼拜日做")]:
        a, b = route(canto).contract(), route(mandarin).contract()
        assert (a["intent"], a["faq_id"]) == (b["intent"], b["faq_id"]) and a["faq_id"], (canto, a["why"])


def _write(tmp_path, body: str):
    p = tmp_path / "dialect.yaml"
    p.write_text(body, encoding="utf-8")
    return p


@pytest.mark.parametrize("body, says", [
    ("words:\n  好: [好]\n", "two or more characters"),
    ("characters:\n  谁: [边个]\n", "one character"),
    ("words:\n  谁: [边个]\n  哪里: [边个]\n", "listed twice"),
    ("words:\n  怎么: [点样]\n  怎么样: [怎么]\n", "both a dialect form"),
    ("words:\n  谁: [who]\n", "Chinese characters only"),
    ("words:\n  谁: 边个\n", "non-empty list"),
    ("phrases:\n  谁: [边个]\n", "words and characters"),
])
def test_a_wrong_table_is_refused_with_its_reason(tmp_path, body, says):
    with pytest.raises(RulesError, match=says):
        load_dialect(_write(tmp_path, body))


def test_the_shipped_table_is_valid_and_keys_every_cache():
    table = load_dialect()
    assert table["谁"] and table["找"] == ["搵"]
    assert normalize.DIALECT_FILE in normalize.KEY_FILES
