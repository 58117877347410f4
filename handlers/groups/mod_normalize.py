"""One normal form for every message before moderation matches or learns.

Evasions this undoes (each step is linear in the text length):
- full-width letters and digits (NFKC), traditional characters (OpenCC t2s),
  upper case;
- spacing, dots, symbols and emoji between letters ("w e c h a t", "v.x",
  "加-微-信", "代🌸开"): only letters, digits and CJK characters are kept;
- spellings and homophones listed as data (薇信, V信, vx, 围脖 -> 微信);
- homophones by sound: a span of characters whose toneless pinyin is that of a
  listed word (moderation.yaml `pinyin_words`, e.g. 卫星/威信 -> 微信) is read
  as the word (pypinyin);
- words spelt out in Latin pinyin ("ban zheng ke zhang" -> 办证刻章; moderation.yaml
  `latin_pinyin_words`), matched inside a run of Latin letters;
- Latin tone marks dropped ("shǎ bī" reads shabi); emoji that stand for a sound
  (moderation.yaml `emoji_sounds`: 🐴 马, 🅱 b) read as it;
- "+" before a word ("+微", "+V") read as 加 (a "+86" or "1+1" keeps its digits);
  "$" between letters read as s (nm$l);
- Chinese numerals in runs of four or more (一三八..., 壹叁捌, 幺洞拐) -> digits,
  so a spelt-out phone number reads as one.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import ahocorasick

# Chinese numerals, financial forms and the radio-operator readings (幺 1, 洞 0, 拐 7).
CN_DIGITS = {"零": "0", "〇": "0", "○": "0", "洞": "0", "一": "1", "壹": "1", "幺": "1", "二": "2", "贰": "2",
             "两": "2", "三": "3", "叁": "3", "四": "4", "肆": "4", "五": "5", "伍": "5", "六": "6", "陆": "6",
             "七": "7", "柒": "7", "拐": "7", "八": "8", "捌": "8", "九": "9", "玖": "9", "勾": "9"}
# A run this long is a number being spelt out, not words like 一起 / 三五成群.
_CN_RUN = 4


@lru_cache(maxsize=1)
def _t2s():
    try:
        import opencc

        return opencc.OpenCC("t2s")
    except Exception:  # OpenCC missing: traditional text is then matched as is
        return None


# Latin letters with accents or tone marks (shǎ bī, wēi xìn): read without them.
_MARKED_LATIN = re.compile("[\u00c0-\u024f\u1e00-\u1eff]+")


def _unmark(m: re.Match) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", m.group(0)) if not unicodedata.combining(c))


# Cyrillic and Greek letters that pass for Latin ones ("Вх: fitcoach", "wеchat" with a
# Cyrillic е): read as the Latin letter they stand for. В is read as v, as it sounds: "Вх"
# is vx. NFKC keeps them apart from Latin, so a filter on Latin words never sees them.
_CONFUSABLE = str.maketrans({
    "а": "a", "А": "a", "в": "v", "В": "v", "е": "e", "Е": "e", "ё": "e", "к": "k", "К": "k",
    "м": "m", "М": "m", "н": "h", "Н": "h", "о": "o", "О": "o", "р": "p", "Р": "p", "с": "c",
    "С": "c", "т": "t", "Т": "t", "у": "y", "У": "y", "х": "x", "Х": "x", "і": "i", "І": "i",
    "ј": "j", "ѕ": "s", "α": "a", "Α": "a", "β": "b", "Β": "b", "ε": "e", "Ε": "e", "ι": "i",
    "Ι": "i", "κ": "k", "Κ": "k", "ν": "v", "Ν": "n", "ο": "o", "Ο": "o", "ρ": "p", "Ρ": "p",
    "τ": "t", "Τ": "t", "υ": "u", "χ": "x", "Χ": "x", "Μ": "m", "Ζ": "z", "Η": "h",
    # small capitals, which NFKC leaves alone too ("ᴡx: …")
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i",
    "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s",
    "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z"})


def fold(text: str) -> str:
    """NFKC + simplified + lower case, tone marks dropped (pinyin reads as plain letters),
    Cyrillic and Greek look-alikes read as Latin."""
    text = unicodedata.normalize("NFKC", text or "").translate(_CONFUSABLE)
    text = _MARKED_LATIN.sub(_unmark, text)
    conv = _t2s()
    if conv is not None:
        text = conv.convert(text)
    return text.lower()


# \w is letters, digits, CJK and "_": the underscore and everything else is noise.
_NOISE = re.compile(r"[\W_]+")
_NUM_RUN = re.compile("[" + "".join(CN_DIGITS) + r"0-9]{%d,}" % _CN_RUN)
_CN_TO_DIGIT = str.maketrans(CN_DIGITS)


def strip_noise(text: str) -> str:
    """Only letters, digits and CJK characters (what people put between them is noise)."""
    return _NOISE.sub("", text)


def _digits(m: re.Match) -> str:
    run = m.group(0)
    return run if run.isdigit() else run.translate(_CN_TO_DIGIT)


_NUM_RUN3 = re.compile("[" + "".join(CN_DIGITS) + r"0-9]{3,}")


def cn_numerals_to_digits(text: str, shortest: int = _CN_RUN) -> str:
    """Runs of >= 4 Chinese numerals (or numerals mixed with digits) become digits;
    `shortest=3` where a phone cue says digits are being spelt out (一三九 ...)."""
    return (_NUM_RUN3 if shortest == 3 else _NUM_RUN).sub(_digits, text)


@lru_cache(maxsize=8192)
def syllable(ch: str) -> str:
    import os
    import sys

    if "pypinyin" not in sys.modules:
        # One character at a time needs no phrase table; skipping it saves ~1 s of start-up.
        os.environ.setdefault("PYPINYIN_NO_PHRASES", "true")
    from pypinyin import lazy_pinyin

    return lazy_pinyin(ch)[0]


@lru_cache(maxsize=4096)
def _readings(ch: str) -> tuple[str, ...]:
    """A character's toneless readings, the usual one first (pypinyin heteronyms)."""
    if not "\u4e00" <= ch <= "\u9fff":
        return (ch,)
    from pypinyin import Style, pinyin

    first = syllable(ch)
    return (first, *[r for r in dict.fromkeys(pinyin(ch, style=Style.NORMAL, heteronym=True)[0]) if r != first][:2])


def _spellings(word: str, limit: int = 8) -> list[str]:
    """The word spelt in toneless pinyin, one spelling per mix of its characters' readings."""
    out = [""]
    for ch in word:
        out = [o + r for o in out for r in _readings(ch)][:limit]
    return out


class PinyinFolder:
    """Replaces spans that sound like a listed word with the word itself."""

    def __init__(self, words: list[str]):
        self.auto = None
        keys = {}
        for w in words:
            key = self._key(w)
            if key and len(w) >= 2:
                keys[key] = w
        if keys:
            self.auto = ahocorasick.Automaton()
            for key, w in keys.items():
                self.auto.add_word(key, (key.count("|"), len(key), w))
            self.auto.make_automaton()

    @staticmethod
    def _syllables(text: str) -> list[str]:
        # One syllable per CJK character; anything else stands for itself.
        return [syllable(ch) if "\u4e00" <= ch <= "\u9fff" else ch for ch in text]

    def _key(self, word: str) -> str:
        return "".join(s + "|" for s in self._syllables(word))

    def fold(self, text: str) -> str:
        if self.auto is None or not any("\u4e00" <= c <= "\u9fff" for c in text):
            return text
        syl = self._syllables(text)
        joined, ends = [], []
        pos = 0
        for s in syl:
            joined.append(s + "|")
            pos += len(s) + 1
            ends.append(pos - 1)  # index of the '|' closing this character
        flat = "".join(joined)
        end_to_char = {e: i for i, e in enumerate(ends)}
        repl: list[tuple[int, int, str]] = []
        for end, (n, klen, word) in self.auto.iter(flat):
            ci = end_to_char.get(end)
            if ci is None:
                continue
            a = ci - n + 1
            # The match must begin where character a begins, not inside a syllable.
            if a < 0 or (ends[a - 1] + 1 if a else 0) != end - klen + 1:
                continue
            if text[a:ci + 1] != word:
                repl.append((a, ci + 1, word))
        if not repl:
            return text
        repl.sort()
        out, last = [], 0
        for a, b, word in repl:
            if a < last:
                continue  # overlapping matches: the first one wins
            out.append(text[last:a])
            out.append(word)
            last = b
        out.append(text[last:])
        return "".join(out)


class LatinPinyinFolder:
    """Replaces a listed word spelt in toneless Latin pinyin ("banzheng", "daikai")
    with the word. Keys are at least MIN_LETTERS long so that short syllables
    inside English words or ids are left alone; one Aho-Corasick pass (linear)."""

    MIN_LETTERS = 6

    def __init__(self, words: list[str]):
        self.auto = None
        keys = {}
        for w in words:
            # Every reading of a polyphone (行 is xing and hang: yinhang is 银行).
            for key in _spellings(w):
                if key.isascii() and key.isalpha() and len(key) >= self.MIN_LETTERS:
                    keys[key] = w
        if keys:
            self.auto = ahocorasick.Automaton()
            for key, w in keys.items():
                self.auto.add_word(key, (len(key), w))
            self.auto.make_automaton()

    def fold(self, text: str) -> str:
        if self.auto is None or not any("a" <= c <= "z" for c in text):
            return text
        hits = sorted(((end - n + 1, end + 1, w) for end, (n, w) in self.auto.iter(text)),
                      key=lambda h: (h[0], -h[1]))
        out, last = [], 0
        for a, b, word in hits:
            if a < last:
                continue  # overlapping: the leftmost, then longest, wins
            out.append(text[last:a])
            out.append(word)
            last = b
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)


class MixedPinyinFolder:
    """Reads Latin pinyin written beside Chinese characters as the word they make together
    ("shua单" 刷单, "fang子出zu" 房子出租, "ma将馆" 麻将馆, "sha比" 傻比): the half-way dodge,
    for any word of the vocabulary (the lexicon's own words and the training corpus's), not
    only the listed ones. A word must join at least one Latin syllable to at least one of
    the characters actually written, so pure Latin (ids, English) and pure Chinese are left
    alone; a run of letters that is not pinyin ("wifi", "vx", "ok") is never touched.
    Linear: each syllable tries words of at most MAX_CHARS units around it."""

    MAX_CHARS = 4
    MAX_RUN = 24

    def __init__(self, words: list[str]):
        self.keys: dict[str, list[str]] = {}
        for w in dict.fromkeys(words):
            if 2 <= len(w) <= self.MAX_CHARS and all("\u4e00" <= c <= "\u9fff" for c in w):
                for key in _spellings(w, limit=4):
                    self.keys.setdefault(key, []).append(w)
        self.syllables = frozenset(r for w in self.keys.values() for x in w for ch in x for r in _readings(ch))

    def _cut(self, run: str) -> list[str] | None:
        """The run cut into syllables of the vocabulary's characters, fewest first; None if it
        is no pinyin. A run longer than MAX_RUN letters is no half-way dodge (and is left alone)."""
        if len(run) > self.MAX_RUN:
            return None
        count: list[int | None] = [0] + [None] * len(run)
        back = [0] * (len(run) + 1)
        for j in range(1, len(run) + 1):
            for i in range(max(0, j - 6), j):
                c = count[i]
                if c is not None and run[i:j] in self.syllables and (count[j] is None or c + 1 < count[j]):
                    count[j], back[j] = c + 1, i
        if count[-1] is None:
            return None
        out, j = [], len(run)
        while j > 0:
            out.append(run[back[j]:j])
            j = back[j]
        return out[::-1]

    def fold(self, text: str) -> str:
        if not self.keys or not _LATIN_BESIDE_CJK.search(text):
            return text
        units: list[tuple[str, bool]] = []  # (character or syllable, written in Latin)
        for piece in _LATIN_OR_CHAR.findall(text):
            syl = self._cut(piece) if piece.isascii() and piece.isalpha() else None
            units.extend([(sy, True) for sy in syl] if syl else [(piece, False)])
        out, i = [], 0
        while i < len(units):
            word = self._word_at(units, i)
            if word is None:
                out.append(units[i][0])
                i += 1
            else:
                out.append(word)
                i += len(word)
        return "".join(out)

    def _word_at(self, units: list[tuple[str, bool]], i: int) -> str | None:
        """The longest vocabulary word starting at unit i that joins Latin and written characters."""
        for n in range(min(self.MAX_CHARS, len(units) - i), 1, -1):
            span = units[i:i + n]
            if not any(lat for _, lat in span) or all(lat for _, lat in span):
                continue
            if any(not lat and not "\u4e00" <= u <= "\u9fff" for u, lat in span):
                continue
            for key in self._span_keys(span):
                for w in self.keys.get(key, ()):
                    if all(lat or w[k] == u for k, (u, lat) in enumerate(span)):
                        return w
        return None

    @staticmethod
    def _span_keys(span: list[tuple[str, bool]]) -> list[str]:
        keys = [""]
        for u, lat in span:
            keys = [k + r for k in keys for r in ((u,) if lat else _readings(u))][:8]
        return keys


_LATIN_BESIDE_CJK = re.compile(r"[a-z][\u4e00-\u9fff]|[\u4e00-\u9fff][a-z]")
_LATIN_OR_CHAR = re.compile(r"[a-z]+|.", re.S)


# "+微", "+ V", "+威": a plus before a letter or CJK character is 加; "+86", "1+1" stay.
_PLUS_WORD = re.compile(r"[+＋➕]\s*(?=[^\W\d_])")


# "nm$l", "n m $ l": a dollar sign between letters is an s.
_LEET_S = re.compile(r"(?<=[a-z])\s*\$\s*(?=[a-z])")


def normalize(text: str, variants: list[tuple[str, str]], pinyin: PinyinFolder | None,
              latin: LatinPinyinFolder | None = None, sounds: dict[int, str] | None = None,
              mixed: MixedPinyinFolder | None = None) -> str:
    """The compact normal form: folded, emoji that stand for a sound read as it ("尼🐴"),
    noise stripped, numerals as digits, spellings and homophones replaced by the canonical word."""
    folded = fold(text)
    if sounds:
        folded = folded.translate(sounds)
    # ➕ / + before a word is read as 加 ("➕V", "+微"); every other symbol is noise.
    comp = strip_noise(_LEET_S.sub("s", _PLUS_WORD.sub("加", folded).replace("➕", "加")))
    if mixed is not None:
        comp = mixed.fold(comp)
    if latin is not None:
        comp = latin.fold(comp)
    comp = cn_numerals_to_digits(comp)
    for form, canon in variants:
        if form in comp:
            comp = comp.replace(form, canon)
    if pinyin is not None:
        comp = pinyin.fold(comp)
    return comp
