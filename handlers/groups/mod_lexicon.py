"""The group rules' lexicon (handlers/groups/data/moderation.yaml): loaded, validated,
reloaded on change, and the normal form its terms are matched on (`compact`).

Apart from the verdict (handlers/groups/moderation.py) so that the learned second
opinion (mod_model), which reads the same normal form, does not import the
module that consults it."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import ahocorasick

from ground import rules as rulefiles
from ground.rules import RulesError
from handlers.groups.mod_normalize import LatinPinyinFolder, MixedPinyinFolder, PinyinFolder, normalize, syllable
from handlers.groups.mod_normalize import fold as _fold

DATA_FILE = Path(__file__).with_name("data") / "moderation.yaml"
# The labelled messages the model learns from (mod_model); their words are also the
# vocabulary half-pinyin is read into (MixedPinyinFolder).
CORPUS = Path(__file__).resolve().parents[1] / "data" / "train" / "moderation.jsonl"
# Characters read before and after a hit for its exceptions (moderation._term_hits): bounded,
# so a long text full of hits costs linear time; no not_before / not_after word may be longer.
AROUND_CHARS = 40
CATEGORIES = ("ad", "insult", "illegal")


ModerationDataError = RulesError  # the one error type of rule files (ground/rules.py)


# --- loading ------------------------------------------------------------------

@dataclass
class Category:
    name: str
    strong: list[str]
    weak: list[str]
    weak_needed: int
    boosters: list[str]
    exceptions: dict[str, dict[str, list[str]]]
    model_support: list[str] = field(default_factory=list)
    # Weak words do not count when one of these is in the message (a neighbour's
    # own old sofa for self-pickup is no ad); strong words and combos still do.
    weak_unless: list[str] = field(default_factory=list)


@dataclass
class Combo:
    category: str
    why: str
    groups: list[re.Pattern]  # each must match somewhere in the compact text
    unless: list[str]  # ...and none of these may appear


@dataclass
class Lexicon:
    variants: list[tuple[str, str]]  # (variant, canonical), longest first
    categories: dict[str, Category]
    allowed_domains: list[str]
    exempt_roles: list[str]
    precedence: list[str]
    report_cues: list[str] = field(default_factory=list)
    # "不是骗子": a cue negated is no report; removed before cues and combos' `not` are read.
    report_negations: list[str] = field(default_factory=list)
    whole_insults: list[str] = field(default_factory=list)
    # "我这个猪脑子": an insult word right after one of these is the writer about themself.
    self_refs: list[str] = field(default_factory=list)
    number_labels: list[str] = field(default_factory=list)
    # "工单号 WX2024…", "单号 SF1402 8837 6620": what follows is a reference, not a phone or a WeChat id.
    reference_labels: list[str] = field(default_factory=list)
    # A hotline beside these is the property's or a public one asked about, not an offer's.
    hotline_not_an_offer: list[str] = field(default_factory=list)
    pinyin: Any = None  # mod_normalize.PinyinFolder over `pinyin_words`
    latin: Any = None  # mod_normalize.LatinPinyinFolder over `latin_pinyin_words`
    mixed: Any = None  # mod_normalize.MixedPinyinFolder over the lexicon's and the corpus's words
    combos: list[Combo] = field(default_factory=list)
    # Emoji read as the sound they stand for (ord -> text, for str.translate).
    sounds: dict[int, str] = field(default_factory=dict)
    automaton: Any = None
    boosters: Any = None
    # The writer's own details given to the property (addressed / self / request words).
    own_details: dict[str, list[str]] = field(default_factory=dict)
    # Terms that are English words (idiot, moron): also looked up word by word in the text.
    latin_terms: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    # Short Latin terms (sb, cnm): also looked up as words written on their own ("一帮 rz,SB+1"),
    # where the compact form glues them to the letters around them.
    short_latin: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise ModerationDataError(f"{DATA_FILE.name}: {where} must be a list of words")
    return [_fold(str(v)) for v in value]


def load_lexicon(path: Path = DATA_FILE) -> Lexicon:
    return LEXICON.get(path)


def _build_lexicon(raw: Any, src: rulefiles.Source) -> Lexicon:
    raw, path = raw or {}, src.path
    if not isinstance(raw, dict):
        raise src.fail("", "must be a mapping (variants, categories, combos, ...)")
    variants: list[tuple[str, str]] = []
    for canon, forms in (raw.get("variants") or {}).items():
        for form in _str_list(forms, f"variants.{canon}"):
            variants.append((form, _fold(str(canon))))
    variants.sort(key=lambda p: -len(p[0]))
    cats: dict[str, Category] = {}
    for name, body in (raw.get("categories") or {}).items():
        if name not in CATEGORIES:
            raise ModerationDataError(f"{path.name}: categories.{name}: unknown category (expected one of {CATEGORIES})")
        if not isinstance(body, dict):
            raise ModerationDataError(f"{path.name}: categories.{name} must be a mapping")
        exc = {}
        for term, rule in (body.get("exceptions") or {}).items():
            # not_with: the hit does not count when one of these is anywhere in the message.
            if not isinstance(rule, dict) or set(rule) - {"not_before", "not_after", "not_with"}:
                raise ModerationDataError(f"{path.name}: categories.{name}.exceptions.{term}: "
                                          "only not_before / not_after / not_with lists are allowed")
            exc[_fold(str(term))] = {k: _str_list(v, f"categories.{name}.exceptions.{term}.{k}")
                                     for k, v in rule.items()}
            long = [x for k in ("not_before", "not_after") for x in exc[_fold(str(term))].get(k, [])
                    if len(x) > AROUND_CHARS]
            if long:
                raise ModerationDataError(f"{path.name}: categories.{name}.exceptions.{term}: {long[0]!r} is longer "
                                          f"than the {AROUND_CHARS} characters read around a hit")
        needed = body.get("weak_needed", 2)
        if not isinstance(needed, int) or needed < 1:
            raise ModerationDataError(f"{path.name}: categories.{name}.weak_needed must be a positive whole number")
        cats[name] = Category(name, _str_list(body.get("strong"), f"categories.{name}.strong"),
                              _str_list(body.get("weak"), f"categories.{name}.weak"), needed,
                              _str_list(body.get("boosters"), f"categories.{name}.boosters"), exc,
                              _str_list(body.get("model_support"), f"categories.{name}.model_support"),
                              _str_list(body.get("weak_unless"), f"categories.{name}.weak_unless"))
    lex = Lexicon(variants, cats, _str_list(raw.get("allowed_domains"), "allowed_domains"),
                  [str(r) for r in raw.get("exempt_roles") or []],
                  [str(c) for c in raw.get("precedence") or ["illegal", "ad", "insult", "privacy"]],
                  report_cues=_str_list(raw.get("report_cues"), "report_cues"),
                  report_negations=_str_list(raw.get("report_negations"), "report_negations"),
                  number_labels=_str_list(raw.get("number_labels_not_personal"), "number_labels_not_personal"),
                  reference_labels=_str_list(raw.get("reference_labels"), "reference_labels"),
                  hotline_not_an_offer=_str_list(raw.get("hotline_not_an_offer"), "hotline_not_an_offer"),
                  whole_insults=_str_list(raw.get("whole_message_insults"), "whole_message_insults"),
                  self_refs=_str_list(raw.get("self_refs"), "self_refs"))
    lex.combos = _combos(raw.get("combos"), path)
    lex.sounds = _sounds(raw.get("emoji_sounds"), path)
    own = raw.get("own_details") or {}
    if not isinstance(own, dict) or set(own) - {"addressed", "self", "request", "offered"}:
        raise ModerationDataError(f"{path.name}: own_details must map addressed, self, request and offered to word lists")
    lex.own_details = {k: _str_list(v, f"own_details.{k}") for k, v in own.items()}
    lex.pinyin = PinyinFolder(_str_list(raw.get("pinyin_words"), "pinyin_words"))
    lex.latin = LatinPinyinFolder(_str_list(raw.get("latin_pinyin_words"), "latin_pinyin_words"))
    lex.mixed = MixedPinyinFolder(_vocabulary(lex))
    auto = ahocorasick.Automaton()
    for cat in cats.values():
        for strength, words in (("strong", cat.strong), ("weak", cat.weak)):
            for w in words:
                _add_term(lex, auto, cat.name, strength, w)
    auto.make_automaton()
    lex.automaton = auto
    boost = ahocorasick.Automaton()
    for cat in cats.values():
        for w in cat.boosters:
            entries = list(boost.get(w, [])) + [cat.name]
            boost.add_word(w, entries)
    if len(boost):
        boost.make_automaton()
    lex.boosters = boost if len(boost) else None
    return lex


def _add_term(lex: Lexicon, auto: Any, cat: str, strength: str, w: str) -> None:
    """One term into the automaton (with its half-pinyin forms) and the Latin word tables."""
    if w.isascii() and w.isalpha() and len(w) >= 4:
        lex.latin_terms.setdefault(w, []).append((cat, strength, w))
    elif w.isascii() and w.isalpha() and strength == "strong":
        lex.short_latin.setdefault(w, []).append((cat, strength, w))
    forms = [w] + (half_pinyin(w) if cat in ("insult", "illegal") and strength == "strong" else [])
    for f in forms:
        # One key may belong to several categories: keep a list per key.
        auto.add_word(f, list(auto.get(f, [])) + [(cat, strength, w, len(f))])


_CJK_WORD = re.compile(r"[\u4e00-\u9fff]{2,4}")


def _vocabulary(lex: Lexicon) -> list[str]:
    """The words half-pinyin may be read into: every word the lexicon names (terms, support
    words, boosters, combos' plain alternatives, variants) and the words the training
    corpus uses twice or more (jieba), so "fang子出zu" reads 房子出租 though no rule lists it."""
    words: list[str] = [canon for _, canon in lex.variants] + [form for form, _ in lex.variants]
    for cat in lex.categories.values():
        words += cat.strong + cat.weak + cat.model_support + cat.boosters + cat.weak_unless
    for combo in lex.combos:
        for g in combo.groups:
            words += _CJK_WORD.findall(g.pattern)
    return words + _corpus_words()


def _corpus_words() -> list[str]:
    try:
        import jieba
    except ImportError:  # jieba missing: the lexicon's own words still serve
        return []
    counts: dict[str, int] = {}
    try:
        lines = CORPUS.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        for w in jieba.cut(_fold(line)):
            if 2 <= len(w) <= 4:
                counts[w] = counts.get(w, 0) + 1
    return [w for w, n in counts.items() if n >= 2]


def half_pinyin(word: str) -> list[str]:
    """An insult or an illegal offer with one character spelt in toneless pinyin ("弱zhi",
    "jian人", "dai开"):
    the usual half-way dodge. Words of 2-4 Chinese characters; syllables of 2+ letters."""
    if not 2 <= len(word) <= 4 or not all("\u4e00" <= c <= "\u9fff" for c in word):
        return []
    out = []
    for i, ch in enumerate(word):
        syl = syllable(ch)
        if len(syl) >= 2 and syl.isascii() and syl.isalpha():
            out.append(word[:i] + syl + word[i + 1:])
    return out


def _sounds(raw: Any, path: Path) -> dict[int, str]:
    """emoji_sounds: {sound: [emoji, ...]} -> a str.translate table (emoji as folded)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ModerationDataError(f"{path.name}: emoji_sounds must map a sound to a list of emoji")
    table: dict[int, str] = {}
    for sound, emoji in raw.items():
        for e in _str_list(emoji, f"emoji_sounds.{sound}"):
            e = e.replace("\ufe0f", "")
            if len(e) != 1 or e.isalnum():
                raise ModerationDataError(f"{path.name}: emoji_sounds.{sound}: {e!r} must be one emoji")
            table[ord(e)] = _fold(str(sound))
    return table


# An unescaped + or * (or {n,}) after a character or class: an unbounded repeat.
_UNBOUNDED = re.compile(r"(?<!\\)[+*]|\{\d+,\}")


def _combos(raw: Any, path: Path) -> list[Combo]:
    out = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw or []):
        where = f"{path.name}: combos[{i}]"
        if not isinstance(item, dict) or item.get("category") not in CATEGORIES:
            raise ModerationDataError(f"{where}: category must be one of {CATEGORIES}")
        # A combo pasted twice (an edit applied at two places) doubles nothing but the
        # work and hides which copy a later change should go to.
        same = repr((item.get("category"), item.get("all"), item.get("not")))
        if same in seen:
            raise ModerationDataError(f"{where}: the same combo as combos[{seen[same]}]")
        seen[same] = i
        groups = item.get("all")
        if not isinstance(groups, list) or not groups:
            raise ModerationDataError(f"{where}.all: a list of pattern lists is needed")
        pats = []
        for j, g in enumerate(groups):
            words = _str_list(g, f"combos[{i}].all[{j}]")
            if not words:
                raise ModerationDataError(f"{where}.all[{j}]: empty")
            loose = [w for w in words if _UNBOUNDED.search(w)]
            if loose:
                raise ModerationDataError(f"{where}.all[{j}]: {loose[0]!r}: bound every repeat ({{1,6}}, not + or *), "
                                          "so a long message costs linear time")
            try:
                pats.append(re.compile("|".join(f"(?:{w})" for w in words)))
            except re.error as exc:
                raise ModerationDataError(f"{where}.all[{j}]: bad pattern ({exc})") from None
        out.append(Combo(item["category"], str(item.get("why") or item["category"]), pats,
                         _str_list(item.get("not"), f"combos[{i}].not")))
    return out


LEXICON = rulefiles.RuleFile(DATA_FILE, build=_build_lexicon)


def lexicon() -> Lexicon:
    return LEXICON.get()


# --- normalisation ---------------------------------------------------------------

# NFKC + simplified + lower case: the form every lexicon word and message share.


@lru_cache(maxsize=512)  # analyse, the model and the privacy checks all ask for it
def compact(text: str) -> str:
    """The normal form terms are matched on (mod_normalize.normalize)."""
    lex = lexicon()
    return normalize(text, lex.variants, lex.pinyin, lex.latin, lex.sounds, lex.mixed)
