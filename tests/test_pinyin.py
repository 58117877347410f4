"""A line typed in toneless pinyin is read as the Chinese it sounds like (faq/pinyin.py)
before it is understood: owners without a Chinese keyboard get an answer, and a hazard
typed in pinyin is still urgent. English, codes and Chinese are never read as pinyin."""
from __future__ import annotations

import pytest

from faq import pinyin


@pytest.mark.parametrize("line, expect", [
    ("wuyefei zenme jiao", "物业费怎么交"),
    ("tingchechang zai nali", "停车场在哪里"),
    ("dian ti li kun zhu ren le", "电梯里困住人了"),  # one syllable a word
    ("louxia you ren chou yan", "楼下有人抽烟"),
    ("wo jia 1802 de shuiguan bao le", "我家1802的水管爆了"),  # digits stay
    ("WO JIA DE MEN SUO HUAI LE", "我家的门锁坏了"),  # capitals
    ("xi'an lai de pengyou ke yi ting che ma", "西安"),  # an apostrophe cuts syllables
    ("wifi mima shi duoshao", "密码是多少"),  # an English word among pinyin stays
    ("xiaoqu li keyi yang mao ma", "可以养猫"),  # "keyi" typed as one word is read as one (not 立刻 + 一)
])
def test_pinyin_lines_are_read_as_chinese(line, expect):
    assert expect in (pinyin.read(line) or ""), pinyin.read(line)


@pytest.mark.parametrize("line", [
    "Can I book the gym tomorrow?", "you can change a man", "hello, my door is broken", "ok", "nihao",
    "Zhang Wei", "沪A12345", "物业费怎么交", "我家门口 abc 123", "https://example.com/a/b", "A-3-1202",
    "The lift is broken again, please send someone", "SOS", "www",
])
def test_other_lines_are_not_read(line):
    assert pinyin.read(line) is None


def test_a_pinyin_line_routes_like_its_chinese(env):
    from handlers.router import route

    trapped = route("dian ti li kun zhu ren le, kuai lai")
    assert (trapped.intent, trapped.priority) == ("complaint", "urgent")
    assert "pinyin read as" in trapped.why
    fee = route("wuyefei zai nali jiao")
    assert fee.intent == "faq" and fee.answer
    # Asking about a planned outage in pinyin asks; it pages nobody.
    outage = route("mingtian tingshui ma, ting duo jiu")
    assert outage.intent == "faq" and outage.priority is None, outage.why


def test_the_index_does_not_depend_on_what_loaded_jieba_first():
    """The words the index prefers are the same in a fresh process and in one where the
    matcher has added the KB's words to the process-wide jieba (the worker parent's
    order): an index built after the matcher once read "gou ma" as 鉤嗎, not 狗吗."""
    import json
    import subprocess
    import sys

    from faq import retrieval

    retrieval.warm_up()  # the KB's words added to the shared tokenizer, as in a warmed worker
    warm = pinyin._domain_words(pinyin._domain_files())
    code = ("import json; from faq import pinyin; "
            "print(json.dumps(pinyin._domain_words(pinyin._domain_files())))")
    cold = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                     check=True).stdout.strip().splitlines()[-1])
    assert warm == cold
    assert "狗" in pinyin.read("xiaoqu li keyi yang da gou ma")
