"""How an owner's text is made comparable with the knowledge base.

Two forms:
- `clean(text)`: NFKC (full-width -> half-width), traditional -> simplified
  (OpenCC t2s), lower case, dialect words read as Mandarin (`data/dialect.yaml`:
  边个 -> 谁, 咋个 -> 怎么), emoji and whitespace removed. The intent classifier
  and the embedding read this.
- `canonical(text, table)`: `clean` plus the lexicon's rewriting of typos,
  homophones and synonyms to one written form. The matcher reads this, after
  `EnglishGloss` has read English words as the KB's (`faq.matcher.Index.canon`),
  and the knowledge base is indexed through the same steps, so a synonym is
  expanded on both sides by construction.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from ground.rules import RulesError, read_yaml, register_check

DIALECT_FILE = Path(__file__).resolve().parent / "data" / "dialect.yaml"
# What `clean` returns depends on these files: every cache of something learned from
# cleaned text (intent model, calibrator, question gate) keys on their bytes.
KEY_FILES = (Path(__file__).resolve(), DIALECT_FILE)

_WS = re.compile(r"\s+")
# Zero-width joiners, variation selectors, keycaps and skin tones glue emoji together.
_INVISIBLE = re.compile("[\u200b-\u200f\u2060\ufe00-\ufe0f\u20e3\U0001f3fb-\U0001f3ff]")

_opencc = None


def _t2s(text: str) -> str:
    global _opencc
    if _opencc is None:  # ~15 ms, and only processes that understand text need it
        import opencc

        _opencc = opencc.OpenCC("t2s")
    return _opencc.convert(text)


def _is_emoji(ch: str) -> bool:
    cat = unicodedata.category(ch)
    # So: symbols incl. emoji, Sk: modifiers, Cs/Co: surrogates/private use (broken emoji, WeChat faces).
    return cat in ("So", "Sk", "Cs", "Co") or 0x1F000 <= ord(ch) <= 0x1FAFF


# Characters that might be emoji/symbols; only these are checked one by one
# (CJK, Latin and full-width text, i.e. nearly everything, is skipped at C speed).
_MAYBE_EMOJI = re.compile("[\u00a9\u00ae\u2000-\u2fff\u3297\u3299\ud800-\udfff\ue000-\uf8ff\U00010000-\U0010ffff]")


def strip_emoji(text: str) -> str:
    text = _INVISIBLE.sub("", text)
    return _MAYBE_EMOJI.sub(lambda m: "" if _is_emoji(m.group(0)) else m.group(0), text)


# WeChat's text faces like [微笑] [捂脸] arrive as bracketed words.
_WECHAT_FACE = re.compile(r"\[[\u4e00-\u9fff]{1,4}\]")


def _plain(text: str) -> str:
    t = unicodedata.normalize("NFKC", text or "")
    t = _WECHAT_FACE.sub("", t)
    t = strip_emoji(t)
    return _t2s(t).lower()


def _folded(text: str) -> str:
    return _dialect()(_plain(text))


_CJK_ONLY = re.compile(r"[\u3400-\u9fff\U00020000-\U0002ffff]+")


def load_dialect(path: Path = DIALECT_FILE) -> dict[str, list[str]]:
    """Mandarin -> its dialect forms, validated: `words` of two or more characters,
    `characters` of one; Chinese only (English has its own gloss); a form listed once
    and never another entry's Mandarin side (one pass must leave nothing to rewrite)."""
    data = read_yaml(path)
    name = path.name
    if not isinstance(data, dict) or set(data) - {"words", "characters"}:
        raise RulesError(f"{name}: must be a mapping with words and characters")
    table: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for section, one_char in (("words", False), ("characters", True)):
        part = data.get(section) or {}
        if not isinstance(part, dict):
            raise RulesError(f"{name}: {section} must map a Mandarin word to a list of dialect forms")
        for zh, forms in part.items():
            zh = str(zh)
            if not _CJK_ONLY.fullmatch(zh):
                raise RulesError(f"{name}: {section}.{zh}: the Mandarin side must be Chinese characters")
            if not isinstance(forms, list) or not forms:
                raise RulesError(f"{name}: {section}.{zh}: must be a non-empty list of dialect forms")
            for f in forms:
                f = str(f)
                if not _CJK_ONLY.fullmatch(f):
                    raise RulesError(f"{name}: {section}.{zh}: {f!r} is not Chinese characters only")
                if (len(f) == 1) != one_char:
                    want = "one character (else put it under words)" if one_char else "two or more characters (single ones go under characters, if Mandarin never uses them)"
                    raise RulesError(f"{name}: {section}.{zh}: {f!r} must be {want}")
                if f in seen:
                    raise RulesError(f"{name}: {section}.{zh}: {f!r} is listed twice (also under {seen[f]})")
                seen[f] = zh
                table.setdefault(zh, []).append(f)
    clash = sorted(set(seen) & set(table))
    if clash:
        raise RulesError(f"{name}: {clash[0]!r} is both a dialect form (of {seen[clash[0]]}) and a Mandarin side")
    return table


register_check("faq/data/dialect.yaml", lambda: load_dialect())  # `guanjia check` validates it

_dialect_rw = None


def _dialect() -> "Rewriter":
    global _dialect_rw
    if _dialect_rw is None:  # read once per process: clean() is cached, so no reload
        _dialect_rw = Rewriter(load_dialect(), prep=lambda w: _WS.sub("", _plain(w)))
    return _dialect_rw


@lru_cache(maxsize=4096)
def clean(text: str) -> str:
    """NFKC, t2s, lower, no emoji, no whitespace. Cached: owners repeat themselves."""
    return _WS.sub("", _folded(text))


# A space between two Latin letters or digits separates words; anywhere else (between
# Chinese clauses, around a Chinese word) it is only a pause.
_WORD_GAP = re.compile(r"(?<=[a-z0-9'?!.,;:])\s+(?=[a-z0-9])")


@lru_cache(maxsize=4096)
def clean_words(text: str) -> str:
    """`clean`, but English keeps one space between its words ("how do i join", not
    "howdoijoin"): what a sentence-embedding model reads. Text without two Latin words side
    by side comes out exactly as `clean` makes it."""
    t = _WORD_GAP.sub("\x00", _folded(text))
    return _WS.sub("", t).replace("\x00", " ")



class Rewriter:
    """One-pass longest-match rewriting of variants to canonical words.

    Canonical words map to themselves so that a variant hidden inside an
    already-correct word (e.g. 住满 in 居住满) is not rewritten twice.
    """

    def __init__(self, canonical: dict[str, list[str]], prep=None) -> None:
        prep = prep or clean  # the dialect table itself is read before clean exists
        mapping: dict[str, str] = {}
        for canon, variants in canonical.items():
            c = prep(canon)
            mapping.setdefault(c, c)
            for v in variants:
                mapping[prep(str(v))] = c
        self.mapping = mapping
        keys = sorted(mapping, key=len, reverse=True)
        self._re = re.compile("|".join(re.escape(k) for k in keys)) if keys else None

    def __call__(self, text: str) -> str:
        if self._re is None:
            return text
        return self._re.sub(lambda m: self.mapping[m.group(0)], text)


class EnglishGloss:
    """English words and phrases read as the knowledge base's Chinese words
    ("how do i pay the property fee" -> " 缴费 物业费 "), before `clean` glues English
    words together. Whole words only, any case, an s/es plural included, the longest
    phrase first; `drop` (function words) become nothing. Text without Latin letters
    is returned as it is, at the cost of one regex search."""

    _LATIN = re.compile("[A-Za-z\uff21-\uff3a\uff41-\uff5a]")

    def __init__(self, words: dict[str, list[str]], drop: list[str] | tuple[str, ...] = ()) -> None:
        mapping: dict[str, str] = {}
        for zh, variants in words.items():
            for v in variants:
                mapping.setdefault(self._key(v), f" {zh} ")
        for w in drop:
            mapping.setdefault(self._key(w), " ")
        self.mapping = mapping
        alts = sorted(mapping, key=len, reverse=True)
        # A phrase's words may be split by any spaces, hyphens or underscores.
        body = "|".join(r"[\s_-]+".join(re.escape(p) for p in k.split(" ")) for k in alts)
        self._re = re.compile(rf"(?<![a-z0-9'])(?:{body})(?:e?s)?(?![a-z0-9'])", re.I) if alts else None

    @staticmethod
    def _key(phrase: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", phrase).lower().split())

    def __call__(self, text: str) -> str:
        if self._re is None or not self._LATIN.search(text):
            return text
        t = unicodedata.normalize("NFKC", text)
        return self._re.sub(lambda m: self.mapping.get(self._plural_base(m.group(0)), " "), t)

    def _plural_base(self, found: str) -> str:
        k = self._key(found.replace("-", " ").replace("_", " "))
        if k in self.mapping:
            return k
        for cut in (2, 1):  # "fees" -> "fee", "boxes" -> "box"
            if k[:-cut] in self.mapping:
                return k[:-cut]
        return k


def canonical(text: str, rewriter: Rewriter) -> str:
    return rewriter(clean(text))
