"""Which knowledge-base entry answers a question, and how sure we are.

Ranking: BM25 over jieba words (with the domain user dictionary) plus BM25
over character bigrams (robust to segmentation differences and one-character
typos), on two fields: each question phrasing alone (best one counts) and the
whole entry (title + questions + tags + answer). Owner text and KB text both
go through `faq.normalize.canonical`, which rewrites typos, homophones and
synonyms to one form, so synonyms are expanded on both sides.

Confidence (`Match.score`, 0..1): the share of the question's information
(IDF mass of its words) that the best entry covers, tempered by how far it is
ahead of the runner-up. A question full of words the KB has never seen gets a
low score, which is how the bot knows it does not know.

Public API for other capabilities (e.g. suggested replies in groups):
`best(text) -> Match | None`, `search(text, k) -> list[Match]`.
"""
from __future__ import annotations

import gc
import hashlib
import logging
import math
import os
import pickle
import re
import sys
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from faq.kb import DATA_DIR, Entry, KnowledgeBase, Store
from faq.normalize import EnglishGloss, Rewriter, clean

log = logging.getLogger(__name__)

# Below ANSWER the bot does not answer outright; below CLARIFY it does not even
# offer topics. Tuned on tests/data/route_cases.jsonl (see `guanjia faq eval`).
ANSWER = 0.55
CLARIFY = 0.30

_CJK = re.compile(r"[\u4e00-\u9fff]+")
_WORD_OK = re.compile(r"[\u4e00-\u9fffa-z0-9]")
K1, B = 1.2, 0.75
BIGRAM_WEIGHT = 0.5
ENTRY_FIELD_WEIGHT = 0.5
# Tags are a manager's own keywords for an entry: a query word equal to a tag
# is strong evidence (e.g. which tier a benefits question is about).
TAG_WEIGHT = 1.0
SINGLE_WEIGHT = 0.5
# Only this much of a text is matched (issue 13: every step linear with a hard cap).
MAX_QUERY_CHARS = 2000

_jieba_lock = threading.Lock()
_jieba_ready: set[str] = set()


def _jieba(user_words: list[str]):
    """The process-wide jieba tokenizer, loaded once (~0.5-1.3 s) and shared by
    every capability. Domain words are added idempotently."""
    import jieba

    with _jieba_lock:
        if not _jieba_ready:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
        for w in user_words:
            if w not in _jieba_ready:
                jieba.add_word(w, freq=200000)  # high enough to win over the stock split
                _jieba_ready.add(w)
        _jieba_ready.add("")
    return jieba


@dataclass
class Match:
    entry: Entry
    score: float  # confidence, 0..1
    raw: float  # BM25 score (for ranking and debugging)
    terms: list[str] = field(default_factory=list)  # the query's words this entry covers
    coverage: float = 0.0  # share of the query's information this entry covers
    lead: float = 0.0  # how far ahead of the runner-up (top match only)

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def answer(self) -> str:
        return self.entry.answer


class _BM25:
    """BM25 with per-document precomputed term weights, scored
    document-at-a-time over a candidate list (so common words with long
    postings lists cost nothing extra)."""

    def __init__(self, docs: list[Counter]) -> None:
        self.n = len(docs)
        lens = [sum(d.values()) for d in docs]
        avg = (sum(lens) / self.n) if self.n else 1.0
        df: Counter = Counter()
        for d in docs:
            df.update(d.keys())
        self.df = df
        self.idf = {t: math.log(1 + (self.n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.wt: list[dict[str, float]] = [
            {t: self.idf[t] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * lens[i] / avg)) for t, tf in d.items()}
            for i, d in enumerate(docs)]

    def score(self, terms: list[str], doc: int) -> float:
        w = self.wt[doc]
        return sum(w.get(t, 0.0) for t in terms)


class Index:
    """Everything needed to answer quickly, built from one KnowledgeBase."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.rewrite = Rewriter(kb.lexicon.canonical)
        self.english = EnglishGloss(kb.lexicon.english, kb.lexicon.english_stopwords)
        self.stop = {clean(s) for s in kb.lexicon.stopwords}
        # Single characters carry meaning only when the lexicon says so (群, 狗...).
        self.keep1 = {w for w in self.rewrite.mapping.values() if len(w) == 1} | \
                     {clean(w) for w in kb.lexicon.user_words if len(clean(w)) == 1}
        self.jieba = self._load_jieba()
        entries = kb.entries
        q_words, q_bi, self.q_owner = [], [], []
        e_words, e_bi = [], []
        self.e_vocab: list[set[str]] = []
        self.tag_post: dict[str, list[int]] = defaultdict(list)
        self.e_tags: list[set[str]] = []
        self.e_chars: list[set[str]] = []
        for n, e in enumerate(entries):
            texts = [e.title, *e.questions]
            all_w: Counter = Counter()
            all_b: Counter = Counter()
            for t in texts:
                w, b = self.tokens(t)
                q_words.append(Counter(w))
                q_bi.append(Counter(b))
                self.q_owner.append(n)
                all_w.update(w)
                all_b.update(b)
            tag_w = [t for tag in e.tags for t in self.tokens(tag)[0]]
            ans_w, ans_b = self.tokens(e.answer)
            all_w.update(tag_w)
            all_w.update(ans_w)
            all_b.update(ans_b)
            e_words.append(all_w)
            e_bi.append(all_b)
            tagset = set(tag_w) | {self.canon(tag) for tag in e.tags}
            self.e_tags.append(tagset)
            self.e_chars.append(set(self.canon(" ".join([e.title, *e.questions, e.answer, *e.tags]))))
            for t in tagset:
                self.tag_post[t].append(n)
            self.e_vocab.append(set(all_w) | tagset)
        self.qw, self.qb = _BM25(q_words), _BM25(q_bi)
        self.ew, self.eb = _BM25(e_words), _BM25(e_bi)
        self.e_qdocs: list[list[int]] = [[] for _ in entries]
        for qi, n in enumerate(self.q_owner):
            self.e_qdocs[n].append(qi)
        # Entry-level postings, for choosing candidates cheaply.
        self.w_post: dict[str, list[int]] = defaultdict(list)
        for n, d in enumerate(e_words):
            for t in d:
                self.w_post[t].append(n)
        self.b_post: dict[str, list[int]] = defaultdict(list)
        for n, d in enumerate(e_bi):
            for t in d:
                self.b_post[t].append(n)
        # A word in more than this many entries is too common to pick candidates by.
        self.selective = max(8, len(entries) // 5)
        idfs = list(self.ew.idf.values()) or [1.0]
        self.avg_idf = sum(idfs) / len(idfs)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("jieba", None)  # a module: re-attached (and initialised) on load
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.jieba = self._load_jieba()

    def _load_jieba(self):
        """jieba with the words it must keep whole: the lexicon's and its canonical forms,
        and those English-gloss words its dictionary lacks (a dictionary word such as 宠物
        added with a domain word's weight would split 宠物狗 in Chinese text)."""
        lex = self.kb.lexicon
        jb = _jieba([clean(w) for w in lex.user_words] + list(self.rewrite.mapping.values()))
        gloss = [w for w in map(clean, lex.english) if len(w) > 1 and not jb.get_FREQ(w)]
        return _jieba(gloss) if gloss else jb

    def canon(self, text: str) -> str:
        """The text in canonical form: English read as the KB's words, then `clean`, then
        the lexicon's rewriting."""
        return self.rewrite(clean(self.english(text)))

    def tokens(self, text: str) -> tuple[list[str], list[str]]:
        """(words, bigrams) of a text in canonical form."""
        words, bigrams, _ = self._tokens(text)
        return words, bigrams

    def _tokens(self, text: str) -> tuple[list[str], list[str], list[str]]:
        """(words, bigrams, meaningful single characters)."""
        t = self.canon(text)
        words, singles = [], []
        # No HMM: its guesses glue unknown pairs into fake words (长能, 打折扣).
        for w in self.jieba.lcut(t, HMM=False):
            if w in self.stop or not _WORD_OK.search(w):
                continue
            if len(w) > 1 or w in self.keep1 or w.isdigit():
                words.append(w)
            elif _CJK.match(w):
                singles.append(w)  # 狗, 咬, 坏: not indexed, but part of what was asked
        bigrams = [f"#{run[i:i + 2]}" for run in _CJK.findall(t) for i in range(len(run) - 1)]
        return words, bigrams, singles

    def _known(self, words: list[str]) -> list[str]:
        """A word the KB never uses is replaced by the KB words inside it
        (停水通知 -> 停水, 通知), so one odd segmentation does not lose a question.

        Reliability (issue 13): only substrings up to the KB's longest word can
        be KB words, so the search is bounded by that length: linear in the word,
        not cubic (a 5,000-letter "word" took 14-30 s and stalled the worker).
        Keep this bound in any rewrite (tests/test_long_text.py)."""
        longest = self._longest_word()
        out = []
        for w in words:
            if w in self.ew.idf or len(w) < 3:
                out.append(w)
                continue
            n = len(w)
            parts = [w[i:j] for i in range(n) for j in range(i + 2, min(n, i + longest) + 1)
                     if (i, j) != (0, n) and w[i:j] in self.ew.idf]
            out.extend(parts or [w])
        return out

    def _longest_word(self) -> int:
        longest = self.__dict__.get("_longest")
        if longest is None:  # computed once (also for an index loaded from the cache)
            longest = self._longest = max((len(t) for t in self.ew.idf), default=2)
        return longest

    def _candidates(self, uw: list[str], ub: list[str], limit: int = 40) -> list[int]:
        """Entries worth scoring: those sharing the query's selective words (or
        tags), best first by IDF mass; bigrams stand in when no word is known
        (typos). Keeps latency flat as the KB grows."""
        pre: dict[int, float] = defaultdict(float)
        for terms, post, idf in ((uw, self.w_post, self.ew.idf), (ub, self.b_post, self.eb.idf)):
            sel = [t for t in terms if 0 < len(post.get(t, ())) <= self.selective]
            if not sel and not pre:
                sel = [t for t in terms if t in post]
            for t in sel:
                for n in post[t]:
                    pre[n] += idf[t]
            if pre:
                break
        for w in uw:
            for n in self.tag_post.get(w, ()):
                pre[n] += self.ew.idf.get(w, 0.0)
        return [n for n, _ in sorted(pre.items(), key=lambda kv: -kv[1])[:limit]]

    def _score(self, n: int, uw: list[str], ub: list[str]) -> float:
        """Best phrasing by words + best phrasing by bigrams + whole entry + tag hits."""
        qd = self.e_qdocs[n]
        q = max(self.qw.score(uw, qi) for qi in qd) + BIGRAM_WEIGHT * max(self.qb.score(ub, qi) for qi in qd)
        e = ENTRY_FIELD_WEIGHT * (self.ew.score(uw, n) + BIGRAM_WEIGHT * self.eb.score(ub, n))
        tagset = self.e_tags[n]
        tags = sum(TAG_WEIGHT * self.ew.idf.get(w, 0.0) for w in uw if w in tagset)
        return q + e + tags

    def search(self, text: str, k: int = 3) -> list[Match]:
        # Reliability (issue 13): a hard cap, so no text costs more than this much
        # (a question is far shorter; the router caps too, see handlers/router.py).
        text = (text or "")[:MAX_QUERY_CHARS]
        words, bigrams, singles = self._tokens(text)
        if not words and not bigrams:
            return []
        words = self._known(words)
        singles = list(dict.fromkeys(singles))
        uw = list(dict.fromkeys(words))
        ub = list(dict.fromkeys(bigrams))
        per_entry = {n: self._score(n, uw, ub) for n in self._candidates(uw, ub)}
        per_entry = {n: v for n, v in per_entry.items() if v > 0}
        if not per_entry:
            return []
        # Information mass of the query: a word unknown to the KB weighs like an
        # average word, so off-topic questions cannot look covered.
        weights = {w: self.ew.idf.get(w, self.avg_idf) for w in uw}
        # A single character counts for less, and is covered if the entry's text has it.
        total = (sum(weights.values()) + SINGLE_WEIGHT * self.avg_idf * len(singles)) or 1.0

        def coverage(n: int) -> tuple[float, list[str]]:
            covered = [w for w in uw if w in self.e_vocab[n]]
            chars = self.e_chars[n]
            got = sum(weights[w] for w in covered) + SINGLE_WEIGHT * self.avg_idf * sum(1 for c in singles if c in chars)
            return (got / total if uw or singles else 0.5), covered

        # Re-rank the BM25 shortlist by how much of the question each entry covers:
        # BM25 alone favours entries that repeat one common word (e.g. 群).
        shortlist = sorted(per_entry.items(), key=lambda kv: -kv[1])[:10]
        scored = []
        for n, raw in shortlist:
            cov, covered = coverage(n)
            scored.append((raw * (0.4 + cov), n, raw, cov, covered))
        scored.sort(key=lambda x: -x[0])
        top = scored[0][0]
        second = scored[1][0] if len(scored) > 1 else 0.0
        # A one-word message ("权益", "群") fits many entries equally:
        # better to offer the topics than to guess.
        info = 0.7 if len(uw) <= 1 else 1.0
        out = []
        for rank, (key, n, raw, cov, covered) in enumerate(scored[:k]):
            lead = 0.0
            if rank == 0:
                # Coverage says "this entry talks about what was asked"; the lead says
                # "and no other entry does as well". Both matter for answering outright.
                lead = (key - second) / key if key > 0 else 0.0
                conf = cov * (0.6 + 0.4 * min(1.0, lead * 4)) * info
            else:
                conf = cov * 0.6 * key / top * info
            out.append(Match(self.kb.entries[n], round(conf, 3), round(raw, 3), covered, round(cov, 3), round(lead, 3)))
        return out


def _cache_file(data_dir: Path) -> Path:
    var = Path(os.environ.get("GUANJIA_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
    return var / "cache" / f"faq-index-{hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]}.pickle"


def _cache_key(kb: KnowledgeBase) -> tuple:
    """The KB files as loaded, and the code that turns them into an index."""
    here = Path(__file__).resolve().parent
    code = tuple((f, os.stat(here / f).st_mtime_ns, os.stat(here / f).st_size)
                 for f in ("matcher.py", "normalize.py", "kb.py"))
    return tuple(sorted(kb.mtimes.items())), code, sys.version_info[:2]


def _cached_index(kb: KnowledgeBase, data_dir: Path) -> Index:
    """Building the index means segmenting every phrasing (~0.5 ms each): a
    large KB would slow every cold start, so the result is kept under var/cache
    (our own directory, never a shared temp dir: it is a pickle) and reused
    while neither the KB files nor this code changed."""
    path = _cache_file(data_dir)
    key = _cache_key(kb)
    try:
        with path.open("rb") as f:
            saved_key, index = pickle.load(f)
        if saved_key == key:
            index.kb = kb
            return index
    except FileNotFoundError:
        pass
    except Exception as exc:  # a stale or truncated cache is only a missed shortcut
        log.info("faq index cache not used (%s)", exc)
    index = Index(kb)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            pickle.dump((key, index), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as exc:
        log.info("faq index cache not written (%s)", exc)
    return index


class Matcher:
    """The process-wide matcher: follows the knowledge base's reloads."""

    def __init__(self, data_dir: Path = DATA_DIR) -> None:
        self.store = Store(data_dir)
        self._index: Index | None = None
        self._version = -1
        self._lock = threading.Lock()

    def index(self) -> Index:
        kb = self.store.get()
        if self._index is None or self._version != self.store.version:
            with self._lock:
                if self._index is None or self._version != self.store.version:
                    self._index = _cached_index(kb, self.store.data_dir)
                    self._version = self.store.version
                    # The index is ~100k long-lived objects: keep the cyclic GC from
                    # walking them on every full collection (latency spikes), and keep
                    # forked workers from dirtying their copy-on-write pages.
                    gc.freeze()
        return self._index

    def search(self, text: str, k: int = 3) -> list[Match]:
        return self.index().search(text, k)

    def best(self, text: str, min_score: float = ANSWER) -> Match | None:
        found = self.search(text, 1)
        return found[0] if found and found[0].score >= min_score else None


_default: Matcher | None = None
_default_lock = threading.Lock()


def default() -> Matcher:
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Matcher()
    return _default


def search(text: str, k: int = 3) -> list[Match]:
    """The k closest entries, best first, with confidence scores."""
    return default().search(text, k)


def best(text: str, min_score: float = ANSWER) -> Match | None:
    """The entry that answers `text`, or None when not confident enough."""
    return default().best(text, min_score)


def warm_up() -> None:
    """Load jieba, the knowledge base and the index now (worker parent, before
    forking), so no job pays for it."""
    default().search("银卡会员有哪些权益")
