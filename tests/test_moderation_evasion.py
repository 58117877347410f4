"""Moderation that the usual evasions do not beat, and that leaves ordinary
group talk alone (issue 12, item 5).

The fresh sets in tests/data/groups/fresh*_ were written by hand apart from
the training corpus (handlers/data/train/moderation.jsonl) and are never
trained on. Pure functions: no database, no Redis.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from handlers.groups import mod_model
from handlers.groups.mod_normalize import cn_numerals_to_digits
from handlers.groups.mod_lexicon import ModerationDataError, compact, load_lexicon
from handlers.groups.moderation import analyse

DATA = Path(__file__).parent / "data" / "groups"


def _violations(name: str) -> list[tuple[set[str], str]]:
    rows = []
    for line in (DATA / name).read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            labels, text = line.split("\t", 1)
            rows.append((set(labels.split("|")), text))
    return rows


def _ordinary(pattern: str) -> list[str]:
    return [line.strip() for path in sorted(DATA.glob(pattern))
            for line in path.read_text("utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("prefix", ["fresh", "fresh2", "fresh3", "fresh4"])
def test_fresh_phrasing_caught_without_false_flags(prefix):
    bad = _violations(f"{prefix}_violations.tsv")
    good = _ordinary(f"{prefix}_ordinary.txt")
    missed = [(t, acc, analyse(t).violation) for acc, t in bad if analyse(t).violation not in acc]
    flagged = [(t, analyse(t).why) for t in good if analyse(t).violation != "none"]
    recall = 1 - len(missed) / len(bad)
    print(f"\n{prefix}: {len(bad)} violations, recall {recall:.1%}; {len(good)} ordinary, {len(flagged)} flagged")
    assert recall >= 0.95, missed
    assert flagged == []


def test_no_false_flag_on_any_ordinary_message():
    """Several hundred ordinary messages: numbers, prices, rooms, plates, times, criticism."""
    good = _ordinary("ordinary_*.txt") + _ordinary("fresh*_ordinary.txt")
    assert len(good) >= 700
    flagged = [(t, analyse(t).why) for t in good if analyse(t).violation != "none"]
    assert flagged == []


@pytest.mark.parametrize("text,expected", [
    ("w e c h a t：home888 专业保洁", "ad"),
    ("v.x 同号 low888 低价出", "ad"),
    ("加-微-信 领优惠券", "ad"),
    ("加卫星 zx_007 业主价", "ad"),
    ("关注围脖领红包，关注就送礼", "ad"),
    ("ｊｉａ ｗｅｉｘｉｎ 领福利", "ad"),
    ("二维码私我，进群有福利", "ad"),
    ("想要同款的扣1，我拉个群", "ad"),
    ("电话壹叁捌零零壹叁捌零零零，专业开锁", "ad"),
    ("沙 雕 物 业", "insult"),
    ("煞笔吧你", "insult"),
    ("代🌸开🌸发🌸票", "illegal"),
    ("辦證刻章，各類證件", "illegal"),
    ("冰糖到货了，老客户私我", "illegal"),
    ("收各种银行卡，一张三百", "illegal"),
    # Tone-marked pinyin, emoji that stand for a sound, "$" among spaces, half in pinyin.
    ("门口那个 shǎ bī 又乱停车", "insult"),
    ("加 wēi xìn 领新人红包 专业保洁", "ad"),
    ("你 🐴 的 又停我车位", "insult"),
    ("楼下那个 2🅱️ 天天半夜剁肉", "insult"),
    ("那个保安 n m $ l", "insult"),
    ("隔壁那个 jian人 又在造谣", "insult"),
    ("管家是 nao残 吧 说了三遍", "insult"),
    # Contact digits split by bullets; offers found by what they offer.
    ("专业开锁 换锁芯 电话 一五九•八八六六•二三一零", "ad"),
    ("快手搜 老王生鲜 每晚直播 下单立减", "ad"),
    ("高价上门回收旧家电 冰箱空调都要", "ad"),
    ("麻 将 局 每晚都有 抽水一成 熟人带进", "illegal"),
    ("仿真枪 现货 隐蔽发货", "illegal"),
    ("驾驶证不用考 包拿 七天出证", "illegal"),
    ("出本楼业主信息 电话房号齐全 一份五十", "illegal"),
    ("有需要保洁的找我 威❤：clean_0571", "ad"),
    ("问三遍都不懂 真是个 2 5 0", "insult"),
    ("8楼那个你是zz吗 天天半夜装修", "insult"),
    ("保安大爷就是个老b登", "insult"),
    ("一群 混 蛋 🥚 都不管事", "insult"),
    ("物业那个经理就是个 asshole", "insult"),
    ("帮人走流水 一天结 私聊", "illegal"),
    ("专业查人定位 通话记录都能查", "illegal"),
    ("保洁上门 电话 1️⃣3️⃣6️⃣0️⃣1️⃣1️⃣2️⃣8️⃣8️⃣7️⃣3️⃣ 随叫随到", "ad"),   # keycap digits
    ("这物业就是群 王 8 蛋", "insult"),
    ("前台那位 chǔn huò 一个", "insult"),
    ("the guards here are total morons", "insult"),
    ("线上葡京 注册送彩金 私我", "illegal"),
    ("车上装个定位器 老公去哪一查便知 私聊", "illegal"),
    ("手工蛋糕 下单看这里 tiantian 点 shop", "ad"),
    ("做家政十年了 加绿色泡泡 clean_home88", "ad"),
    ("楼上那个🐷头 半夜拖椅子", "insult"),
    ("2货快递员 又把箱子扔地上", "insult"),
    ("免实名手机卡 接码专用 量大从优", "illegal"),
    ("高仿100元 一比八 验钞都能过", "illegal"),
    ("专业疏通下水道 50元起 热线 0755-26638815", "ad"),           # a landline with an offer
    ("这帮保安全是 lj 只会玩手机", "insult"),
    ("❄️和🍃都有 老地方 私我", "illegal"),
    ("高价收 yin hang 卡 私聊", "illegal"),                       # 行 read as hang
    ("dai开各类fapiao 私我", "illegal"),
    ("selling fake invoices, any company name, message me", "illegal"),
    ("复制口令打开某宝 童装店铺 群友专享券", "ad"),
    ("家电清洗 价目表见主页 上门服务", "ad"),
    ("新开的烧腊店 报我名字打九折 电话 0757-8832 1146", "ad"),   # a landline split by a space
    ("车库那间每晚有场子 底注20 有兴趣的兄弟来", "illegal"),
    ("本人有业主名单 电话房号都有 五千条打包卖", "illegal"),
    ("没走海关的烟 一条两百 懂的来", "illegal"),
    ("can sort out a fake work permit for you, DM", "illegal"),
    ("谁家装修的 生孩子没屁眼 垃圾全倒楼道", "insult"),
    ("卖号 实名认证的支付宝号 带流水 私聊", "illegal"),
    ("护照 学位证都能做 跟真的一模一样 滴滴我", "illegal"),
])
def test_evasions(text, expected):
    assert analyse(text).violation == expected, analyse(text)


@pytest.mark.parametrize("text", [
    "2栋1203的邻居叫黄志明，他家天天漏水",          # room + full name
    "粤B·6K7M2 是5栋802林女士的车",                 # plate + room + surname
    "8栋302那个老太太一个人住，白天门都不锁",        # home + person + exposing detail
    "他的身份证号 110101199003074512",               # labelled ID, wrong check digit
    "身份证110105198001011238，就是他",              # ID with a valid checksum
    "卡号 6222 0212 3456 7890 128 是她的",           # bank card passing Luhn
    "她电话一三九零零零零一二三四，去找她",          # phone in Chinese numerals
    "手机前三位139 中间0000 尾号1234 找他",          # phone given in parts
    "7栋1502的 孙 立 新 天天把垃圾堆楼道",            # a full name spaced out
    "苏E·3Q8W1 老停消防通道 打听了是 9栋602 姓 钱 的",  # plate + room + a spaced surname
    "3号楼二单元801那个林国栋家里天天吵",            # unit in Chinese numerals
    "苏E·3Q8W1 是B座1801 吴家的车 堵了消防通道",      # a lettered block
    "她电话138-2266-0945 住隔壁楼",                  # a phone split by dashes
    "1703住的是 Zhou Jiahui 天天半夜弹琴",             # a full name in pinyin
    "6栋902的宋佳琪每天早上七点出门",                  # a name, then her routine
    "3栋1101的业主叫 wang xiao li 家里老漏水",          # a name in lower-case pinyin after 叫
    "zhōu yǎ tíng 住 8-1602 平时一个人在家",              # a name spelt with its tones
    "七栋六零一的杜海涛 天天把车停消防通道",               # a home in Chinese numerals
    "浙A 5·Q·2·7·M 是三号楼 八零二 周家的车",             # a plate split by dots
    "住在2栋302的是 liu jian guo",                         # a lower-case pinyin name
    "9栋402住的就是孙振华 天天半夜唱歌",
    "3栋 一 〇 〇 六 住的是何 志 强",                     # spaced numerals and name
    "京A·7K3M9 是5号楼1201 司马家的车",                   # a compound surname
    "Ms. Wang Lifang in Room 2203 lets her dog bark all day",   # an English home and title
    "住喺5座8樓C室嘅林國強 成日好嘈",                        # a Hong Kong style home
    "7栋那个刘振东(1903) 总是占两个车位",                      # the room in brackets
    "9栋那个一个人住的姑娘赵晓燕 每天半夜12点才下班回来",          # a building, a name, when alone
    "5栋801的刘秀英阿姨家里就她一个人 白天门都不锁",               # a full name, then 阿姨
    "对门的小姑娘叫陈佳怡 周末爸妈出差 她一个人在家",                # a full name and home alone
    "那辆白色宝马 苏E·7M2K9 车主真名叫吴海峰",                      # a plate and its owner
])
def test_privacy_by_combination(text):
    assert analyse(text).violation == "privacy", analyse(text)


@pytest.mark.parametrize("text", [
    "2栋1203的邻居，你家漏水了",
    "粤B·6K7M2的车主麻烦挪车",
    "5栋802的林阿姨做的包子真好吃",
    "我住8栋302，下午在家，快递放门口",
    "身份证丢了去哪里补办",
    "订单号 4512345678901234 的快递到了吗",
    "客服热线400-123-4567",
    "电表读数12345.6，这个月用了300度",
    "一楼的住户说下水道返水了",
    "冰糖雪梨炖好了",
    "办房产证要带什么材料",
    "物业费的发票能开专票吗",
    "karma的问题 别想太多",                        # "ma的" inside an English word
    "我家🐶今天走丢了 谁看到了告诉我",
    "小区冰壶体验课报名了吗",
    "闲鱼搜了一下 二手婴儿床有没有人要",
    "物业组织旧家电回收 上门收 周六在南门",
    "孩子的水枪坏了 有人知道哪里修吗",
    "物业 $ 收费标准 $ 能公示一下吗",
    "维修工单号 WX20251103-0017 还没人接",            # a reference, not a WeChat id
    "快递单号 YT1388 2266 0945 三天没动了",          # a reference, not a phone
    "周六烧烤报名：1. 2-801 2. 5-1202 3. 7-303",     # rooms in a sign-up list
    "小区门口新开的水果店打折 榴莲很便宜",
    "1201 He said the lift is fixed",                 # English after a room is no name
    "周末去澳门玩 有人一起吗",
    "these idiotic rules about parking 能不能改改",      # criticism, no one called names
    "发财树叶子发黄了 有懂的邻居吗",
    "孩子英语要带SB和WB 别忘了",
    "过年买了个猪头 卤好了分邻居",
    "物业这个月来了2货车 把建筑垃圾拉走了",
    "we live in 1203 and the lift is noisy",
    "绘本看完了 送给需要的小朋友 3栋门口自取",
    "物业服务中心电话 0571-88776655 有事可以打",
    "我们三个人打牌 不玩钱的 来吗",
    "零食三包 十块钱 谁要",
    "物业你好 我是3栋1102业主 电话13912345678 厨房下水堵了 麻烦安排师傅上门看看",   # own details
    "新来的保安尼玛扎西小伙子很热心",                        # Nyima, a Tibetan name
    "周末踢football 有人一起吗",
    "我叫刘海涛，住5栋1702，门禁卡坏了想补办一张",         # the writer's own name and home
    "提醒大家：有人冒充物业发短信让点链接退物业费，千万别点",  # a warning quoting the scam
    "警方提醒：不要出借自己的银行卡，会涉嫌帮信罪",
    "请问南门新开的粥铺 说业主打九折是真的吗",
    "停车费一个月250 跟物业费一起交吗",                       # 250 as a price
    "社区组织免费量血压 需要的老人周六上午去活动室",            # the community's own free service
    "捡到一串车钥匙 失主私聊我说下车型",                      # lost and found
    "3栋的赵姐 你订的菜我帮你拿上来了 下班来拿",               # 下班 is no detail about her
    "顺丰 2291836457012 到前台了 业委会的快递",               # a mobile's digits inside a longer run
    "我这个猪脑子 又把门禁卡锁家里了",                          # the writer about themself
    "孩子考试用2B涂卡 别忘了带",
    "有人私聊我让加微信进什么群 是不是骗子",                     # reported, not offered
    "圣诞节的糖果买多了 要的小朋友来拿",                         # sweets, not drug slang
    "我是6栋1101的业主李建华 卫生间漏水了 麻烦安排师傅",           # the writer's own name and home
    "我是3栋的张先生 苏A·8K2M7 是我的车 被人挡住了",                # the writer's own plate
    "社区医院下周三打流感疫苗 60岁以上免费 需要的老人带身份证",       # a public health service
    "有人在门口说免费送油 要扫码登记 大家别去",                       # a warning
])
def test_ordinary_with_numbers_rooms_and_slang_words(text):
    assert analyse(text).violation == "none", analyse(text)


@pytest.mark.parametrize("category,text", [
    ("ad", "代购日本药妆 Вх: riko_shop"),                 # Cyrillic letters for vx
    ("ad", "新茶上市 邻居八折 🛰️信 tea_88"),              # an emoji label, a space, the id
    ("insult", "you b*tch, stop parking in my spot"),      # a starred vowel
    ("insult", "保安是个伞兵吧 叫了半小时没人来"),
    ("illegal", "笑气弹现货 聚会必备"),
    ("illegal", "高仿💵 能过点钞机 私聊"),                  # an emoji for the banknote
    ("ad", "办宽带找我 ᴡx: net_fast88"),                   # small capitals
    ("insult", "保安那帮人 草🦙的 叫半天不来"),                # the llama for 泥马
    ("ad", "我是老板 本群邻居来店里报暗号打九折"),
    ("illegal", "病假条 体检报告 要哪个出哪个"),
    ("ad", "这家理发店是我表哥开的 报我名字剪发立减十块"),             # a relative's shop
    ("ad", "免费领纸巾一包 只要下载注册我们的APP"),                    # free, with a catch
    ("illegal", "新的一百块 跟真的一模一样 谁要私我"),                  # counterfeit money
])
def test_dodges_of_round_13(category, text):
    assert analyse(text).violation == category, analyse(text)


def test_chinese_numerals_become_digits_only_in_number_runs():
    assert cn_numerals_to_digits("电话一三八一二三四五六七八") == "电话13812345678"
    assert cn_numerals_to_digits("一起去，三五成群") == "一起去，三五成群"
    assert compact("Ｗ·Ｅ·Ｃ·Ｈ·Ａ·Ｔ") == "微信"


def test_half_pinyin_read_into_the_word_it_makes_with_the_characters_written():
    # Any word of the lexicon or the training corpus, not only listed ones.
    assert "刷单" in compact("s h u a 单,佣金立返")
    assert "麻将馆" in compact("ma将馆开业")
    assert "出租" in compact("fang 子 出 zu")
    assert analyse("s h u a 单,佣金立返,新手第一单就返").violation != "none"
    # Latin that is not pinyin, or pinyin with no character beside it, is left as written.
    for text in ("wifi密码是多少", "B区3栋", "ok的 谢谢", "vx号", "我在shopping mall", "hao"):
        assert compact(text) == compact(text.replace(" ", "")) and analyse(text).violation == "none"
    assert "wifi" in compact("wifi密码是多少")


def test_corpus_is_large_and_mostly_ordinary():
    rows = mod_model.load_corpus()
    labels = [r["label"] for r in rows]
    assert len(rows) >= 1200
    assert labels.count("none") / len(rows) >= 0.5
    assert set(labels) == set(mod_model.LABELS)
    test_texts = {t for name in ("fresh", "fresh2", "fresh3", "fresh4") for _, t in _violations(f"{name}_violations.tsv")}
    test_texts |= set(_ordinary("fresh*_ordinary.txt"))
    assert not test_texts & {r["text"] for r in rows}, "fresh test lines must not be trained on"


def test_model_on_held_out_split():
    """The model alone, on the corpus lines it was not trained on."""
    _, held = mod_model.split(mod_model.load_corpus())
    m = mod_model.model()
    assert all(r["text"] not in {x["text"] for x in mod_model.split(mod_model.load_corpus())[0]} for r in held[:5])
    right = sum(m.predict(r["text"])[0] == r["label"] for r in held)
    assert right / len(held) >= 0.85


def test_corpus_errors_name_the_line(tmp_path):
    bad = tmp_path / "c.jsonl"
    bad.write_text(json.dumps({"text": "x", "label": "spam"}) + "\n", encoding="utf-8")
    with pytest.raises(mod_model.CorpusError, match=r"c.jsonl:1: label"):
        mod_model.load_corpus(bad)


def test_combo_errors_name_the_entry(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("combos:\n  - category: ad\n    all: [['(']]\n", encoding="utf-8")
    with pytest.raises(ModerationDataError, match=r"combos\[0\]"):
        load_lexicon(bad)
    # An unbounded repeat would make a long run of digits cost quadratic time: refused.
    bad.write_text("combos:\n  - category: ad\n    all: [['[0-9]+条']]\n", encoding="utf-8")
    with pytest.raises(ModerationDataError, match=r"combos\[0\].all\[0\].*bound every repeat"):
        load_lexicon(bad)
    # The same combo twice (an edit pasted at two places) is refused, naming both.
    bad.write_text("combos:\n  - category: ad\n    all: [[a]]\n  - category: ad\n    all: [[a]]\n", encoding="utf-8")
    with pytest.raises(ModerationDataError, match=r"combos\[1\]: the same combo as combos\[0\]"):
        load_lexicon(bad)
    bad.write_text("emoji_sounds:\n  马: [马]\n", encoding="utf-8")
    with pytest.raises(ModerationDataError, match=r"emoji_sounds"):
        load_lexicon(bad)


@pytest.mark.parametrize("unit", ["一", "8", "8-", "a", "m0", "加微信", "1栋1201王建国 ", "🌸", "我这个猪脑子",
                                  "私聊我", "f*ck "])
def test_long_texts_in_linear_time(unit):
    """100 KB of one pattern costs about 10x what 10 KB costs (no super-linear step)."""
    analyse("预热")

    def cost(n: int) -> float:
        best = float("inf")
        # CPU time of this process, the best of three: the machine is shared (wall time
        # counts other processes' turns); a new tail each time defeats caches.
        for k in range(3):
            text = unit * (n // len(unit.encode("utf-8")) + 1) + "结尾" * k
            start = time.process_time()
            analyse(text)
            best = min(best, time.process_time() - start)
        return best

    small, big = cost(10_000), cost(100_000)
    assert big < 20.0  # shared 2-core machine; the ratio below is the real check
    assert big < max(small, 0.005) * 40, (small, big)  # linear is 10x, quadratic 100x


def test_trained_model_cached_by_warm_up(tmp_path, monkeypatch):
    """The worker's warm-up saves the weights; another process loads them instead of training."""
    monkeypatch.setenv("GUANJIA_VAR_DIR", str(tmp_path))
    trained = mod_model.model()
    path = mod_model.save_cache(trained)
    assert path is not None and path.parent == tmp_path / "cache"
    loaded = mod_model._load_cached()
    assert loaded is not None
    for text in ("加我微信领福利", "明天几点停水", "冰糖到货了，老客户私我"):
        assert loaded.predict(text)[0] == trained.predict(text)[0]
