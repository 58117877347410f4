"""Privacy by combination: who lives where, even without a phone number.

A room number on its own is ordinary talk ("1201的邻居，你家水管漏了"), and so
is a plate ("粤B12345的车主麻烦挪车") or a neighbourly name (王阿姨). Tied
together they identify a person at home: room + full name; plate + room + a
name; a home + a person + a detail that exposes them (lives alone, works at,
owes money). The word lists are data (moderation.yaml `privacy`).

Cost: a few regular expressions with bounded repeats (linear), and jieba's
name tagging only when a room or plate is present, on at most MAX_CHARS.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from faq import pinyin
from ground import rules as rulefiles
from handlers.groups.mod_normalize import CN_DIGITS, cn_numerals_to_digits, fold, syllable

DATA_FILE = Path(__file__).with_name("data") / "moderation.yaml"
MAX_CHARS = 2000
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
            "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤欧")
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "慕容", "司徒", "夏侯", "尉迟", "公孙", "长孙", "宇文", "令狐")
ROOM = re.compile(r"(?:\d{1,2}|(?<![a-z])[a-z])\s*(?:栋|幢|号楼|座|期)\s*(?:[\d一二三四五六七八九十]{1,2}\s*单元\s*)?\d{3,4}(?!\d)"
                  r"|(?<!\d)\d{1,2}-\d{1,2}-\d{3,4}(?!\d)|(?<!\d)\d{1,2}-\d{3,4}(?!\d)"
                  r"|\d{1,2}\s*单元\s*\d{3,4}(?!\d)|(?<!\d)\d{3,4}\s*(?:室|房)"
                  # Hong Kong style, a floor and a flat letter: "3座12樓B室", "12楼b室".
                  r"|(?<!\d)\d{1,2}\s*楼\s*[a-z]\s*(?:室|座|户)"
                  # In English: "Room 1502", "Flat 12B", "Apt 601", "Unit 3-1502".
                  r"|\b(?:room|rm|flat|apt|apartment|unit)\.?\s*#?\s*(?:\d{1,2}-)?\d{3,4}(?!\d)|\bflat\s*\d{1,2}[a-z]\b")
# A plate, its characters maybe split by dots or spaces ("沪B 3·9·2·L·8").
PLATE = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][a-z]\s*[·•.\-]?\s*"
                   r"(?:[a-z0-9]\s?[·•.\-]?\s?){4,5}[a-z0-9](?![a-z0-9])")
# A bare room number ("304的许某某", "住1102", "孙某某(1702)"): only counted next to a full name.
# Not the digits of an id ("love888，..."): no letter right before it.
ROOM_BARE = re.compile(r"(?<![\da-z_.:：\-])\d{3,4}(?=的|住|室|房|号房|业主|那家|是|,|，|\s|[)）。]|家(?!店|公司|企业|商户|商家|门店|单位|医院|银行|餐厅|超市|店铺|机构))(?![\d年月日号点元块分度%])|住\s*\d{3,4}(?!\d)")
BUILDING = re.compile(r"(?<!\d)\d{1,2}\s*(?:栋|幢|号楼|座)")
NAMED = re.compile(rf"(?:叫|名叫|全名|姓名|名字是|业主|真名|大名)\s*([{SURNAMES}][\u4e00-\u9fff]{{1,2}})")


@dataclass
class Rules:
    honorifics: tuple[str, ...]
    person_refs: tuple[str, ...]
    details: tuple[str, ...]
    phone_cues: tuple[str, ...]
    # Details that put someone at risk whoever reads them (home alone, the door code): with
    # a full name they are a disclosure even when no home is given.
    unsafe_details: tuple[str, ...] = ()


_WORDS = rulefiles.Opt(rulefiles.ListOf(rulefiles.Text()), [])
# Only the `privacy` section of moderation.yaml is read here (moderation.py reads the rest).
PRIVACY = rulefiles.RuleFile(DATA_FILE, name="handlers/groups/data/moderation.yaml#privacy", schema=rulefiles.Record(
    privacy=rulefiles.Opt(rulefiles.Record(honorifics=_WORDS, person_refs=_WORDS, details=_WORDS, phone_cues=_WORDS,
                                           unsafe_details=_WORDS), {})),
    build=lambda data, src: Rules(**{k: tuple(fold(v) for v in data["privacy"][k])
                                     for k in ("honorifics", "person_refs", "details", "phone_cues", "unsafe_details")}))


def rules(path: Path = DATA_FILE) -> Rules:
    return PRIVACY.get(path)


# Right after a home: "3栋902的郑国强，", "304的万波" (checked against jieba's dictionary below).
AFTER_HOME = re.compile(rf"(?:\d{{3,4}}|栋|单元|室|房)\s{{0,3}}(?:的|嘅|是|业主|住户|住的是|住的就是|就是|那个|这个|那位|这位)?\s{{0,3}}([{SURNAMES}][\u4e00-\u9fff]{{1,2}})"
                        # (嘅, 佢, 成日: the same words in Cantonese)
                        r"(?=[，,。.！!？?、\s]|$|他|她|佢|在|就|欠|是|家|的|这家|这人|那家|天天|成日|老是|总是|每|经常|平时|常常|白天|晚上|周|去|又|也|都|把|被|跟|和"
                        # a full name and then how neighbours call them: "陈桂兰奶奶"
                        r"|奶奶|爷爷|阿姨|叔叔|大爷|大妈|老师|先生|女士|一个人)")
# A full name in pinyin right after a home: "801住的是 Li Mingyang" (capitals as written).
LATIN_AFTER_HOME = re.compile(r"(?:\d{3,4}|栋|单元|室|房)\s{0,3}(?:的|是|业主|住户|住的是|住着)?\s{0,3}"
                              r"([A-Z][a-z]{0,5})\s?([A-Z][a-z]{1,11})(?![A-Za-z])")


_NOT_GIVEN = set("你我他她它们的了在是和就也都还又很吗呢吧啊")


def _not_a_word(cand: str) -> bool:
    """Not an ordinary word of jieba's dictionary (周末, 高兴, 马上 are words; 郑国强 is not)."""
    import jieba
    import jieba.posseg as pseg

    if not jieba.dt.FREQ.get(cand):
        return True
    return pseg.dt.word_tag_tab.get(cand, "") == "nr"


def _full_names(text: str, r: Rules) -> list[str]:
    """Full names (surname + given name) in the text; 王阿姨 / 刘姐 are not."""
    import jieba.posseg as pseg

    names = [m.group(1) for m in NAMED.finditer(text)]
    names += [m.group(1) for m in AFTER_HOME.finditer(text) if _not_a_word(m.group(1))]
    for w in pseg.cut(text):
        if w.flag.startswith("nr") and 2 <= len(w.word) <= 3 and w.word[0] in SURNAMES:  # nr, nrfg, nrt
            names.append(w.word)
    # 谢谢你, 高兴的: words and pronouns are no given names.
    return [n for n in names if not any(n.endswith(h) or n[1:].startswith(h) for h in r.honorifics)
            and n[1] != n[0] and not set(n[1:]) & _NOT_GIVEN]


@lru_cache(maxsize=1)
def _pinyin_surnames() -> frozenset[str]:
    """The toneless pinyin of SURNAMES (li, wang, zhang ...), read once when first needed."""
    return frozenset(syllable(c) for c in SURNAMES)


# After a word that says a name follows ("业主叫 zhang wei ming"), lower case is as good.
LATIN_NAMED = re.compile(r"(?:叫|名叫|全名|姓名|名字是|的是|住的是|业主是)\s{0,3}([a-z]{1,6})\s?([a-z]{1,6})(?:\s?([a-z]{1,6}))?(?![a-z])")
LATIN_AFTER_HOME_DE = re.compile(r"(?:\d{3,4}|室|房)的\s{0,3}([a-z]{1,6})\s([a-z]{2,12})(?:\s([a-z]{1,6}))?(?![a-z])")
# Pinyin written with its tone marks is a name being spelt ("lín xiǎo yǔ"): two or three
# syllables, at least one marked.
_TONES = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ"
_MARKED = _TONES + "ü"  # ü alone is a letter of the name, not a tone
TONED_NAME = re.compile(rf"(?<![a-z{_MARKED}])([a-z{_MARKED}]{{1,6}})\s([a-z{_MARKED}]{{1,6}})(?:\s([a-z{_MARKED}]{{1,6}}))?(?![a-z{_MARKED}])")


# A title in English before a name in pinyin: "Mr. Zhou Jianhua", "Ms Li Na".
LATIN_TITLED = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Mr\.|Mrs\.|Ms\.|Dr\.)\.?\s+([A-Z][a-z]{0,5})\s?([A-Z][a-z]{1,11})(?![A-Za-z])")


def _latin_names(text: str) -> list[str]:
    """Full names in pinyin: after a home as written (capitals kept: "601 Zhang Wei"), after
    叫 / 姓名 in any case, or spelt with tone marks anywhere; the first syllable a surname."""
    t = unicodedata.normalize("NFC", unicodedata.normalize("NFKC", text or "")[:MAX_CHARS])
    out = [f"{m.group(1)} {m.group(2)}" for m in LATIN_AFTER_HOME.finditer(t)
           if m.group(1).lower() in _pinyin_surnames()]
    out += [f"{m.group(1)} {m.group(2)}" for m in LATIN_TITLED.finditer(t)
            if m.group(1).lower() in _pinyin_surnames() and pinyin.looks_like_syllables(m.group(2).lower())]
    low = t.lower()
    out += [m.group(0) for m in LATIN_NAMED.finditer(low) if m.group(1) in _pinyin_surnames()]
    # "1501的 yang kexin 家长": lower case after a home and 的, when the rest is pinyin too.
    out += [m.group(0) for m in LATIN_AFTER_HOME_DE.finditer(low) if m.group(1) in _pinyin_surnames()
            and all(pinyin.looks_like_syllables(g) for g in m.groups()[1:] if g)]
    for m in TONED_NAME.finditer(low):
        if any(c in _TONES for c in m.group(0)) and fold(m.group(1)) in _pinyin_surnames():
            out.append(m.group(0))
    return out


def _surname_ref(text: str, r: Rules, household: bool = False) -> bool:
    """姓王, 王先生, 李阿姨; with `household` also 李家 (next to a plate and a room,
    "李家的车" names the family as surely as 李先生)."""
    if re.search(f"姓[{SURNAMES}]", text):
        return True
    if any(f"{c}{h}" in text for c in COMPOUND_SURNAMES if c in text for h in r.honorifics):
        return True  # 欧阳家, 司马先生
    return any(f"{s}{h}" in text for s in set(text) & set(SURNAMES) for h in r.honorifics
               if household or h != "家")


def _spread_phone(text: str) -> bool:
    """Digit groups that together make a mobile number (each group 3-4 digits)."""
    groups = [g for g in re.findall(r"\d+", text) if len(g) <= 11]
    for i in range(len(groups)):
        acc = ""
        for g in groups[i:i + 4]:
            acc += g
            if len(acc) == 11 and re.fullmatch(r"1[3-9]\d{9}", acc) and acc != groups[i]:
                return True
            if len(acc) >= 11:
                break
    return False


# "周 文 斌", "姓 郑": a name spelt with spaces between its characters is the same name.
_CJK_GAP = re.compile(r"(?<=[\u3007\u4e00-\u9fff])\s+(?=[\u3007\u4e00-\u9fff])")  # 〇 is U+3007


_NUMERALS = "一二三四五六七八九十零〇两"
_KEYCAP = re.compile("[\ufe0f\u20e3]")
# Homes in Chinese numerals too short for cn_numerals_to_digits: "九栋七零二", "六号楼 五零三".
# Bounded repeats, one try per position: a 100 KB run of 一 stays linear.
_CN_BUILDING = re.compile(rf"[{_NUMERALS}]{{1,3}}(?=\s*(?:栋|幢|号楼|座|单元))")
_CN_ROOM = re.compile(rf"(?<=栋|幢|楼|座|元)\s*[{_NUMERALS}]{{3,4}}|(?<![{_NUMERALS}])[{_NUMERALS}]{{0,3}}[零〇][{_NUMERALS}]{{0,3}}(?=\s*(?:的|室|号房|房|住))")


def _cn_home(m: re.Match) -> str:
    run = m.group(0).strip()
    if "十" in run:  # 十二栋 -> 12, 二十栋 -> 20 (buildings; rooms are read digit by digit)
        a, _, b = run.partition("十")
        return str(int(_digit_run(a) or 1) * 10 + int(_digit_run(b) or 0))
    return _digit_run(run)


_TO_DIGITS = str.maketrans(CN_DIGITS)


def _digit_run(run: str) -> str:
    return run.translate(_TO_DIGITS)


def _plain(text: str) -> str:
    """The text the privacy patterns read: NFKC, folded, bounded, Chinese numerals as
    digits (also a building or room written short in them), no spaces between Chinese characters."""
    # Spaces and keycaps go first, so "一 〇 〇 二" and "1️⃣0️⃣0️⃣1️⃣" read as one number.
    t = _KEYCAP.sub("", fold(unicodedata.normalize("NFKC", text or "")[:MAX_CHARS]))
    t = cn_numerals_to_digits(_CJK_GAP.sub("", t))
    return _CN_ROOM.sub(_cn_home, _CN_BUILDING.sub(_cn_home, t))


SPREAD_PHONE = "privacy: a mobile number given in parts"


def full_name_in(text: str) -> bool:
    """A full name (surname + given name) of someone in the text."""
    return bool(_full_names(_plain(text), rules()))


def tells_about_someone(text: str) -> bool:
    """A full name and a personal detail of theirs ("陈国栋 139… 欠我装修款半年了"): the
    number beside it is that person's, exposed, not the writer's offered."""
    r = rules()
    t = _plain(text)
    return any(d in t for d in r.details) and bool(_full_names(t, r))


def names_someone(text: str) -> bool:
    """A third person in the text: a room, plate, name, surname with a title, 他/她 or
    a person word. Without one, a WeChat id or number is the writer's own, offered."""
    r = rules()
    t = _plain(text)
    # Not ROOM_BARE: a bare number is as likely the id's own digits ("jia ju 2026 家具").
    return bool(ROOM.search(t) or PLATE.search(t) or NAMED.search(t)
                or _surname_ref(t, r) or any(p in t for p in r.person_refs)
                or re.search("[他她]", t) or _full_names(t, r))


def _others_full_names(t: str, text: str, r: Rules) -> list[str]:
    """Full names in the text that are not the writer's own ("我叫王建，住9栋1201": theirs to
    tell; "我是8栋1203的业主王建明": the name after 我是 and the writer's home is theirs too)."""
    return [n for n in _full_names(t, r) + _latin_names(text)
            if not any(f"{w}{n}" in t for w in ("我叫", "我是", "本人", "我的名字是", "我名字叫"))
            and not re.search(rf"(?:我是|本人是?|我叫)[^，,。！？!?]{{0,14}}{re.escape(n)}", t)]


def _without_home(t: str, text: str, r: Rules) -> dict[str, str]:
    """No room or plate: a building, a full name and a personal detail ("6栋那个一个人住的王某某，
    每晚11点走小路回来"), or a full name and an unsafe detail (home alone, the door code), is
    still enough to find the person. The names (jieba) are read only when a detail is there."""
    in_building = bool(BUILDING.search(t)) and any(d in t for d in r.details)
    if not (in_building or any(d in t for d in r.unsafe_details)) or not _others_full_names(t, text, r):
        return {}
    if in_building:
        return {"privacy": "privacy: building + full name + personal details"}
    return {"privacy": "privacy: full name + when they are alone or how to get in"}


def privacy_combination(text: str, comp: str, found: dict[str, str]) -> dict[str, str]:
    """{"privacy": reason} when the combination identifies someone, else {}."""
    if "privacy" in found:
        return {}
    r = rules()
    t = _plain(text)
    if any(c in comp for c in r.phone_cues) and _spread_phone(cn_numerals_to_digits(t, shortest=3)):
        return {"privacy": SPREAD_PHONE}
    room = ROOM.search(t)
    plate = PLATE.search(t)
    bare = ROOM_BARE.search(t)
    if not room and not plate and not bare:
        return _without_home(t, text, r)
    # "我叫王建，住9栋1201，想申请门禁卡": the writer's own name and home are theirs to tell.
    names = _others_full_names(t, text, r)
    if (room or bare) and names:
        return {"privacy": f"privacy: room + full name ({names[0][0]}**)"}
    named = bool(names) or _surname_ref(t, r)
    room = room or bare
    if plate and room and (named or _surname_ref(t, r, household=True)):
        return {"privacy": "privacy: plate + room + name"}
    own = any(w in t for w in ("我是", "我的车", "我家车", "我家的车", "本人"))
    if plate and (names or (named and BUILDING.search(t) and not own)):
        # "真名李某某，车牌京N·9A7Q3", "车牌鲁B·F7290 住6栋 姓邱": the car and its owner
        return {"privacy": "privacy: plate + name"}
    person = named or any(p in t for p in r.person_refs)
    if person and any(d in t for d in r.details):
        return {"privacy": "privacy: where someone lives + personal details"}
    return {}


def has_person_or_home(text: str) -> bool:
    """A room, plate, full name or a reference to someone: what a leak is about."""
    r = rules()
    t = _plain(text)
    return bool(ROOM.search(t) or PLATE.search(t) or NAMED.search(t) or _surname_ref(t, r)
                or any(p in t for p in r.person_refs) or re.search(r"\d{5,}", t))
