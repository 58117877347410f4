"""A line typed in toneless pinyin read back as Chinese characters.

Owners on a phone without a Chinese keyboard (or in a hurry) type
"shuidianfei zai nali jiao a" or "dian ti li kun zhu ren le". The intent
model, the embedding and the safety words all read characters, so such a line
is read as Chinese first: "水电费在哪里交啊". `read(text)` returns that reading,
or None when the text is not a pinyin line (English, Chinese, codes, numbers).

How: the letters are cut into pinyin syllables (a space or an apostrophe is
always a syllable boundary; inside a run of letters every cut into valid
syllables is tried), and the syllables into words by the most probable path
through a word list indexed by pinyin (jieba's dictionary, its most frequent
words, plus the knowledge base's and the training data's words, weighted up:
物业 before 无业). The same idea as jieba's own segmentation, over sounds.
A homophone picked wrongly costs little: the embedding and the matcher are
forgiving of one wrong character, and a reading that needs one character per
syllable throughout (no word found) is rejected as not pinyin.

The index is built once (about 3 s) by the worker's warm-up and cached in
var/cache, keyed by this file, jieba's dictionary and the KB and training files;
it is loaded on the first line that looks like pinyin, so a worker that never
sees one never carries it.
Cost per line is linear: every position tries word keys up to MAX_KEY letters.
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from faq import pickle_cache

TOP_WORDS = 60000  # jieba's most frequent words indexed (of 349k)
DOMAIN_BOOST = 20.0  # a KB / training word counts this many times its jieba frequency,
DOMAIN_FREQ = 500  # and at least this much for each time the community's texts use it
MAX_KEY = 24  # letters in the longest word key tried at one position
INSIDE_TOKEN_COST = 3.0  # a word ending inside a run the typist wrote as one ("li keyi": 里 可以, not 立刻 一...)
MIN_SYLLABLES = 3  # fewer is a word or a name, not a sentence
MIN_PINYIN_SHARE = 0.8  # of the letter tokens, these many must cut into syllables
MAX_CJK = 4  # a line with more Chinese characters than this is Chinese with a word of pinyin

# English words that are also valid pinyin: they count for neither side, so an
# English line ("you can change a man") is not read as pinyin by accident.
_BOTH = frozenset(
    "a an ban bang bin can change china dang den die gang hang he hen long ma man me men "
    "pan ping ran she sun tan ten tie you zen lie pie ha hi la pa".split())

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)*|[\u3400-\u9fff]|[^\sa-z\u3400-\u9fff]+")
_LETTERS = re.compile(r"[a-z]+(?:'[a-z]+)*")
_CJK = re.compile(r"[\u3400-\u9fff]")


def _plain(s: str) -> str:
    """lower case, ü as v (as pinyin keyboards type it), tone marks dropped."""
    s = unicodedata.normalize("NFKC", s).lower().replace("ü", "v").replace("u:", "v")
    s = "".join(ch for ch in unicodedata.normalize("NFD", s) if not unicodedata.combining(ch))
    return s.replace("’", "'")


@dataclass(frozen=True)
class Index:
    words: dict[str, tuple[str, float, int]]  # key -> (word, log p, its syllable cuts as bits: 1 << letter)
    chars: dict[str, tuple[str, float]]  # syllable -> (its most frequent character, log p)
    syllables: frozenset[str]


def _syllables() -> frozenset[str]:
    from pypinyin.constants import PINYIN_DICT

    out = set()
    for readings in PINYIN_DICT.values():
        for r in readings.split(","):
            p = _plain(r)
            if p.isalpha():
                out.add(p)
    # Keyboards write lüe / nüe as lue / nue too; m, n, ng, hm, hng and r are interjections
    # (呣, 嗯, 哼) that would let a consonant on its own pass for a syllable.
    out |= {"lue", "nue"}
    return frozenset(out - {"m", "n", "ng", "hm", "hng", "r"})


_SYL: frozenset[str] | None = None


def _syllables_cached() -> frozenset[str]:
    global _SYL
    if _SYL is None:
        _SYL = _syllables()
    return _SYL


def _jieba_words() -> list[tuple[str, int]]:
    import jieba

    path = Path(jieba.__file__).resolve().parent / "dict.txt"
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                rows.append((parts[0], int(parts[1])))
    return rows


def _build(extra: dict[str, int]) -> Index:
    # pypinyin's tables read directly (its phrase table, else each character's first
    # reading): ~0.4 s for the whole list where its converter takes ~6 s, and it gives
    # the same syllables for 99.6 % of the words.
    from pypinyin.constants import PHRASES_DICT, PINYIN_DICT

    plain = functools.lru_cache(maxsize=None)(_plain)
    rows = _jieba_words()
    total = float(sum(f for _, f in rows))
    top = sorted(rows, key=lambda r: -r[1])[:TOP_WORDS]
    freq = {w: f for w, f in top}
    jieba_freq = dict(rows)
    for w, n in extra.items():
        if 2 <= len(w) <= 6:
            freq[w] = max(freq.get(w, 0), jieba_freq.get(w, 0) * DOMAIN_BOOST, DOMAIN_FREQ * n)
    words: dict[str, tuple[str, float, int]] = {}
    chars: dict[str, tuple[str, float]] = {}
    for w, f in freq.items():
        if not all(ord(ch) in PINYIN_DICT for ch in w):
            continue
        lp = math.log(f / total)
        if len(w) == 1:
            # A character's other readings are rare (而 is "neng" in old texts): they count less.
            for k, r in enumerate(PINYIN_DICT[ord(w)].split(",")):
                p, score = plain(r), lp - (3.0 if k else 0.0)
                if p not in chars or chars[p][1] < score:
                    chars[p] = (w, score)
            continue
        phrase = PHRASES_DICT.get(w)
        if phrase is not None and len(phrase) == len(w):
            sy = [plain(r[0]) for r in phrase]
        else:
            sy = [plain(PINYIN_DICT[ord(ch)].split(",")[0]) for ch in w]
        key = "".join(sy)
        cuts, at = 0, 0
        for s in sy[:-1]:
            at += len(s)
            cuts |= 1 << at
        if key not in words or words[key][1] < lp:
            words[key] = (w, lp, cuts)
    return Index(words, chars, _syllables())


_lock = threading.Lock()
_index: Index | None = None


def _domain_files() -> list[Path]:
    from faq import intent_model, kb

    return sorted(kb.DATA_DIR.glob("*.yaml")) + [p for p in intent_model.CORPUS_FILES if p.exists()]


def _domain_words(files: list[Path]) -> dict[str, int]:
    """The community's own words (the knowledge base's and the training data's) and how
    often they are used, which a reading should prefer: 物业 before 无业, 水电费 before
    说电费. Two neighbouring words of four characters or fewer count as one too (物业 + 费:
    jieba cuts 物业费, which owners type as one sound, wuyefei).

    Cut with jieba as shipped, in a tokenizer of its own (dropped after the build): the
    process-wide one has the KB's words added by faq.matcher, so an index built after the
    matcher loaded differed from one built before it (gou ma read 鉤嗎, not 狗吗)."""
    import jieba

    stock = jieba.Tokenizer()
    words: dict[str, int] = {}
    for p in files:
        for line in p.read_text(encoding="utf-8").splitlines():
            cut = [w for w in stock.cut(line) if _CJK.match(w)]
            pairs = [a + b for a, b in zip(cut, cut[1:]) if len(a + b) <= 4]
            for piece in [w for w in cut if len(w) >= 2] + pairs:
                words[piece] = words.get(piece, 0) + 1
    return {w: n for w, n in words.items() if n >= 2 or len(w) <= 3}


def _cache_key(files: list[Path]) -> str:
    import jieba

    h = hashlib.sha1(Path(__file__).read_bytes())
    h.update(str(os.path.getsize(Path(jieba.__file__).resolve().parent / "dict.txt")).encode())
    for p in files:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _cache_path(files: list[Path]) -> Path:
    # The same var dir as every other learned cache (faq/semantic.py::_var).
    var = Path(os.environ.get("GUANJIA_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
    return var / "cache" / f"pinyin-{_cache_key(files)}.pkl"


def index() -> Index:
    global _index
    with _lock:
        if _index is None:
            files = _domain_files()
            _index = pickle_cache.load_or_build(_cache_path(files), lambda: _build(_domain_words(files)),
                                                "pinyin index")
        return _index


def warm_up() -> None:
    """Makes sure the index's cache file exists (built once per content, ~3 s) but keeps
    nothing in memory: the first pinyin line loads it in a fraction of a second, and a
    worker that never reads one does not carry its ~15 MB."""
    global _index
    if _cache_path(_domain_files()).exists():
        return
    with _lock:
        loaded = _index is not None
    index()
    if not loaded:
        with _lock:
            _index = None


def _cuts(token: str, syllables: frozenset[str]) -> bool:
    """Whether a run of letters cuts into valid syllables (apostrophes are cuts)."""
    for part in token.split("'"):
        ok = [True] + [False] * len(part)
        for j in range(1, len(part) + 1):
            ok[j] = any(ok[i] and part[i:j] in syllables for i in range(max(0, j - 6), j))
        if not ok[-1]:
            return False
    return True


def looks_like_syllables(word: str) -> bool:
    """Whether a run of letters cuts into pinyin syllables ("kexin": ke xin)."""
    w = _plain(word)
    return w.isalpha() and _cuts(w, _syllables_cached())


def looks_like_pinyin(text: str) -> bool:
    """A cheap test before any index is loaded: mostly letter tokens that cut into syllables."""
    t = _plain(text)
    if len(_CJK.findall(t)) > MAX_CJK:
        return False
    tokens = _LETTERS.findall(t)
    if not tokens:
        return False
    syl = _syllables_cached()
    pin = sum(1 for w in tokens if w not in _BOTH and _cuts(w, syl))
    both = sum(1 for w in tokens if w in _BOTH)
    other = len(tokens) - pin - both
    letters = sum(len(w.replace("'", "")) for w in tokens)
    # One English word among three pinyin ones is still a pinyin line ("wifi mima shi duoshao").
    foreign_ok = max(1 if pin >= 3 else 0, (1 - MIN_PINYIN_SHARE) * len(tokens))
    return pin >= 1 and other <= foreign_ok and letters >= 2 * MIN_SYLLABLES


def _read_run(letters: str, forced: set[int], ix: Index) -> tuple[str, int, int] | None:
    """The best reading of one run of letters (forced: positions that must be cuts, the
    spaces between its tokens): (characters, syllables, words of two or more characters),
    or None. Linear: each position tries keys of at most MAX_KEY letters."""
    n = len(letters)
    nxt = [n + 1] * (n + 1)  # nxt[i]: the first forced cut after position i
    for i in range(n - 1, -1, -1):
        nxt[i] = i + 1 if (i + 1) in forced else nxt[i + 1]
    best: list[tuple[float, int, str, int] | None] = [None] * (n + 1)  # score, from, piece, is_word
    best[0] = (0.0, -1, "", 0)
    for i in range(n):
        if best[i] is not None:
            _extend(letters, i, nxt, best, ix)
    if best[n] is None:
        return None
    pieces, at, syll, multi = [], n, 0, 0
    while at > 0:
        _, frm, piece, is_word = best[at]
        pieces.append(piece)
        syll += len(piece)
        multi += is_word
        at = frm
    return "".join(reversed(pieces)), syll, multi


def _extend(letters: str, i: int, nxt: list[int], best: list, ix: Index) -> None:
    """Every word or lone character that can follow position i, kept where it is the best
    path to its end."""
    base = best[i][0]
    n = len(letters)
    for j in range(i + 1, min(n, i + MAX_KEY) + 1):
        key = letters[i:j]
        inside = nxt[i] < j  # a forced cut falls inside this key
        # Ending where the typist did not put a space costs: they group a word's syllables.
        end = base - (INSIDE_TOKEN_COST if j < n and nxt[j - 1] != j else 0.0)
        got = ix.words.get(key)
        if got is not None and (not inside or _cuts_agree(got[2], i, j, nxt)):
            _keep(best, j, end + got[1], i, got[0], 1)
        ch = ix.chars.get(key) if not inside and j - i <= 6 else None
        if ch is not None:
            _keep(best, j, end + ch[1] - 2.0, i, ch[0], 0)  # a lone character is the last resort


def _keep(best: list, j: int, score: float, i: int, piece: str, is_word: int) -> None:
    if best[j] is None or score > best[j][0]:
        best[j] = (score, i, piece, is_word)


def _cuts_agree(cuts: int, i: int, j: int, nxt: list[int]) -> bool:
    """Every forced cut inside letters[i:j] is one of the word's own syllable cuts."""
    f = nxt[i]
    while f < j:
        if not cuts >> (f - i) & 1:
            return False
        f = nxt[f]
    return True


def read(text: str) -> str | None:
    """The Chinese reading of a pinyin line, or None when the line is not pinyin.
    Digits, punctuation, Chinese characters and English look-alikes stay as they are."""
    if not looks_like_pinyin(text):
        return None
    ix = index()
    t = _plain(text)
    out: list[str] = []
    run: list[str] = []  # letter tokens side by side: one run, cut at their spaces
    syllables = words = 0

    def flush() -> bool:
        nonlocal syllables, words
        if not run:
            return True
        letters, forced, at = "", set(), 0
        for tok in run:
            for part in tok.split("'"):
                if at:
                    forced.add(at)
                letters += part
                at += len(part)
        got = _read_run(letters, forced, ix)
        run.clear()
        if got is None:
            return False
        out.append(got[0])
        syllables += got[1]
        words += got[2]
        return True

    syl = ix.syllables
    for tok in _TOKEN.findall(t):
        if _LETTERS.fullmatch(tok) and _cuts(tok, syl):
            run.append(tok)
            continue
        if not flush():
            return None
        out.append(f" {tok} " if _LETTERS.fullmatch(tok) else tok)  # an English word stays a word
    if not flush() or syllables < MIN_SYLLABLES or words == 0:
        return None
    return "".join(out)
