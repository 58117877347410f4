"""Which candidate entry is the answer, and how likely it is right: a small
learned combination of the retrieval signals (the calibrated confidence of
faq.retrieval).

Per candidate entry of one question (faq.candidates.fuse), the features are its
embedding cosine and BM25 confidence, how far each stands above the best
OTHER candidate (margin to the runner-up), whether both signals put it first
(agreement), how far its cosine stands above the whole KB's (z), the length
of the text (a long colloquial question has low cosines everywhere, and its
entry still stands out) and the share of the question's information its words
cover. A logistic regression over them gives P(this entry answers the
question), which ranks the candidates. A second one, over the best
candidate's score, its lead on the next, the length and the share of the
question's words that no entry uses (taxes, stocks: off-topic), gives
P(answering the best candidate is right), which decides answer / menu / hand-off.
The intent model's probability is not a feature: the router asks only when
it already takes the text for a question, and a colloquial one must not be
refused for sounding unlike the KB.

Trained on labelled question -> entry pairs that are not the evaluation sets:
- every KB phrasing, held out of a KB built without it (3 folds by hash), so
  the scores look like those of a question the KB does not contain word for word;
- handlers/data/train/faq_pairs.jsonl (questions written fresh from the seeds
  for KB entries, in owners' styles) and tests/data/route_cases.jsonl's faq cases;
- owners' messages the KB must not answer (small talk, off-topic, asking for a
  person): every candidate is a negative.
The weights are plain numpy, cached under var/cache keyed by the data, the KB
and this code; `guanjia faq train` rebuilds them too.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faq import intent_model, normalize, semantic
from faq.candidates import fuse
from faq.kb import DATA_DIR, KnowledgeBase, load
from faq.matcher import Index
from faq.pickle_cache import load_or_build

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
PAIRS_FILE = ROOT / "handlers" / "data" / "train" / "faq_pairs.jsonl"
CASES_FILE = ROOT / "tests" / "data" / "route_cases.jsonl"
FOLDS = 3
# Owners seldom ask in the KB's words: a held-out phrasing is also asked wrapped
# in the talk around a question (who is asking, why, thanks), which lowers every
# cosine the way a voice-to-text run-on does. Written for this, not from any
# evaluation set.
PREFIXES = ("你好 想问一下 ", "管家你好 我是新搬来的业主 ", "打扰了 家里老人让我帮忙问问 ", "麻烦问个事哈 ",
            "hello 请问 ", "我们这栋好几户都在说这个 ", "上次问过忘了 再问下 ", "您好 我在外地出差 ")
SUFFIXES = (" 谢谢", " 麻烦回复一下 谢谢啦", " 有空的时候回我就行", " 我好提前安排", " thx", " 搞不太清楚",
            " 邻居也想知道", " 辛苦了")
NEGATIVE_INTENTS = ("smalltalk", "offtopic", "handoff")
NEGATIVE_MAX = 700
FEATURES = ("cos", "bm25", "cos_lead", "bm25_lead", "fused_lead", "agree", "cos_top", "bm25_top",
            "z", "long", "bm25_none", "coverage")
# The second stage, per question: is its best candidate the answer?
TOP_FEATURES = ("logit_top", "lead", "long", "unknown")


def features(ranked: list, z_all: np.ndarray, p_question: float, n_chars: int) -> np.ndarray:
    """(n_candidates, n_features) for the candidates of one question
    (p_question is shown in `why`, not used: see the module's note).

    z_all: each candidate's cosine in standard deviations above the KB's mean."""
    cos = np.array([c.cos for c in ranked], dtype=np.float32)
    bm = np.array([c.bm25 for c in ranked], dtype=np.float32)
    fu = cos + bm
    n = len(ranked)

    def lead(v: np.ndarray) -> np.ndarray:
        if n == 1:
            return v.copy()
        order = np.argsort(-v)
        best, second = v[order[0]], v[order[1]]
        other_best = np.where(np.arange(n) == order[0], second, best)
        return v - other_best

    cos_lead, bm_lead, fu_lead = lead(cos), lead(bm), lead(fu)
    cos_top = (cos_lead >= 0).astype(np.float32)
    bm_top = ((bm_lead >= 0) & (bm > 0)).astype(np.float32)
    long = min(1.0, np.log1p(n_chars) / np.log1p(80))
    return np.stack([cos, bm, cos_lead, bm_lead, fu_lead, cos_top * bm_top, cos_top, bm_top,
                     np.clip(z_all, -3, 10) / 5.0, np.full(n, long),
                     (bm <= 0).astype(np.float32), np.array([c.coverage for c in ranked], dtype=np.float32)],
                    axis=1).astype(np.float32)


def top_features(p: np.ndarray, long: float, unknown: float) -> np.ndarray:
    """Per question: the best candidate's logit, its lead over the next, the
    length, and the share of its words the KB never uses (an off-topic
    question - taxes, stocks - is mostly such words)."""
    order = np.sort(p)[::-1]
    p1 = float(np.clip(order[0], 1e-4, 1 - 1e-4))
    p2 = float(order[1]) if len(order) > 1 else 0.0
    return np.array([np.log(p1 / (1 - p1)), p1 - p2, long, unknown], dtype=np.float32)


def unknown_share(index, text: str) -> float:
    """The share of the text's words (jieba, canonical) that no KB entry uses."""
    words = index.tokens(text)[0]
    if not words:
        return 1.0
    return sum(1 for w in words if w not in index.ew.idf) / len(words)


@dataclass
class _Logit:
    w: np.ndarray
    b: float
    mean: np.ndarray
    scale: np.ndarray

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.w + self.b
        return 1.0 / (1.0 + np.exp(-z))

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> "_Logit":
        from sklearn.linear_model import LogisticRegression

        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        lr = LogisticRegression(C=1.0, max_iter=1000)
        lr.fit((x - mean) / scale, y)
        return cls(np.asarray(lr.coef_[0], dtype=np.float32), float(lr.intercept_[0]),
                   mean.astype(np.float32), scale.astype(np.float32))


@dataclass
class Calibrator:
    candidate: _Logit  # P(this candidate is the answer): ranks the candidates
    top: _Logit  # P(the best candidate is the answer): decides whether to answer
    n_queries: int = 0

    def proba(self, x: np.ndarray) -> np.ndarray:
        return self.candidate.proba(x)

    def answer_proba(self, p: np.ndarray, long: float, unknown: float) -> float:
        return float(self.top.proba(top_features(p, long, unknown)[None, :])[0])


# --- training ------------------------------------------------------------------------

def _fold(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % FOLDS


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def labelled_queries() -> list[tuple[str, tuple[str, ...], float]]:
    """(text, acceptable entry ids (empty: nothing should be answered), p_question)."""
    out: list[tuple[str, tuple[str, ...], float]] = []
    for d in _lines(PAIRS_FILE):
        ids = d["faq_id"] if isinstance(d["faq_id"], list) else [d["faq_id"]]
        out.append((d["text"], tuple(ids), -1.0))
    for d in _lines(CASES_FILE):
        exp = d.get("expect") or {}
        if exp.get("faq_id"):
            ids = exp["faq_id"] if isinstance(exp["faq_id"], list) else [exp["faq_id"]]
            out.append((d["text"], tuple(i for i in ids if i), -1.0))
    neg = [e.text for e in intent_model.load_corpus() if e.intent in NEGATIVE_INTENTS]
    neg.sort(key=lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest())
    out += [(t, (), -1.0) for t in neg[:NEGATIVE_MAX]]
    return out


def _rows_for(ranked, z_all, p_q, n_chars, ok: tuple[str, ...]):
    x = features(ranked, z_all, p_q, n_chars)
    y = np.array([c.id in ok for c in ranked], dtype=np.int8)
    return x, y





def training_rows(kb) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    """Features and labels of every candidate, one array per training question,
    and each question's share of words unknown to the KB."""
    from dataclasses import replace

    xs, ys, unknown = [], [], []

    # 1. KB phrasings held out of a KB without them.
    full = semantic.KBVectors(kb.entries)
    row_text = _row_texts(kb.entries)
    for f in range(FOLDS):
        held = {}
        entries = []
        for e in kb.entries:
            keep = tuple(q for q in e.questions if _fold(q) != f)
            for q in e.questions:
                if _fold(q) == f:
                    held[q] = e.id
            entries.append(replace(e, questions=keep))
        ix = Index(KnowledgeBase(entries, kb.lexicon, dict(kb.mtimes)))
        gone = {semantic.prepare(q) for q in held} - {semantic.prepare(e.title) for e in kb.entries}
        mask = np.array([t in gone and not a for t, a in zip(row_text, full.is_answer)], dtype=bool)
        asked = []
        for q, eid in held.items():
            h = int(hashlib.sha256(q.encode("utf-8")).hexdigest()[:8], 16)
            asked.append((q, eid))
            asked.append((PREFIXES[h % len(PREFIXES)] + q + SUFFIXES[(h // 7) % len(SUFFIXES)], eid))
        vecs = semantic.cached_vectors("train", [semantic.prepare(q) for q, _ in asked])
        for (q, eid), v in zip(asked, vecs):
            sims = full.vectors @ v - full.penalty
            sims[mask] = -2.0
            cos = np.maximum.reduceat(sims, full.starts)
            ranked = fuse(cos, ix.search(q, 10), ix.kb.entries, full.pos)
            if not ranked:
                continue
            x, y = _rows_for(ranked, _z(cos, ranked), 0.0, len(semantic.prepare(q)), (eid,))
            unknown.append(unknown_share(ix, q))
            xs.append(x)
            ys.append(y)
    # 2. Owners' questions with their entries, and messages nothing should answer.
    ix_full = Index(kb)
    queries = labelled_queries()
    vecs = semantic.cached_vectors("train", [semantic.prepare(t) for t, _, _ in queries])
    for (t, ok, _), v in zip(queries, vecs):
        cos = full.scores(v)
        ranked = fuse(cos, ix_full.search(t, 10), ix_full.kb.entries, full.pos)
        if not ranked:
            continue
        x, y = _rows_for(ranked, _z(cos, ranked), 0.0, len(semantic.prepare(t)), ok)
        unknown.append(unknown_share(ix_full, t))
        xs.append(x)
        ys.append(y)
    return xs, ys, unknown


def _row_texts(entries) -> list[str]:
    """The prepared text of every row of semantic.KBVectors, in its (sorted) order."""
    texts = []
    for e in entries:
        texts += list(dict.fromkeys(semantic.prepare(t) for t in (e.title, *e.questions)))
        texts.append(semantic.prepare(e.answer))
    return texts  # KBVectors sorts rows by entry, stably: the same order


def _z(cos: np.ndarray, ranked) -> np.ndarray:
    seen = cos[cos > -1.0]
    mu, sd = (float(seen.mean()), float(seen.std() or 1.0)) if len(seen) > 1 else (0.0, 1.0)
    return np.array([(c.cos - mu) / sd for c in ranked], dtype=np.float32)


def fit(kb) -> Calibrator:
    xs, ys, unknown = training_rows(kb)
    cand = _Logit.fit(np.concatenate(xs), np.concatenate(ys))
    # Second stage on the same questions: is the best-ranked candidate right?
    tx, ty = [], []
    long_col = FEATURES.index("long")
    for x, y, u in zip(xs, ys, unknown):
        p = cand.proba(x)
        tx.append(top_features(p, float(x[0, long_col]), u))
        ty.append(int(y[int(np.argmax(p))]))
    return Calibrator(cand, _Logit.fit(np.array(tx), np.array(ty)), len(xs))


def _key(kb) -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve()
    for p in (here, here.parent / "candidates.py", here.parent / "retrieval.py", here.parent / "matcher.py", here.parent / "semantic.py",
              *normalize.KEY_FILES, PAIRS_FILE, CASES_FILE, *intent_model.CORPUS_FILES):
        if p.exists():
            h.update(p.read_bytes())
    lex = kb.lexicon  # its rewriting and English gloss change every BM25 score
    h.update(repr((sorted(lex.canonical.items()), lex.user_words, sorted(lex.stopwords),
                   sorted(lex.english.items()), lex.english_stopwords)).encode())  # no set's own order
    for e in kb.entries:
        h.update(f"{e.id}\x00{e.title}\x00{'|'.join(e.questions)}\x00{e.answer}\x00{'|'.join(e.tags)}\x01".encode())
    return h.hexdigest()[:16]


def build(kb, use_cache: bool = True) -> Calibrator:
    name = f"calibrator-{semantic.model_name()}-{_key(kb)}.pickle"
    path = semantic._var() / name
    # It depends on the repository's files only, so the checkout's own cache serves
    # too (a test's or a bench's scratch GUANJIA_VAR_DIR need not retrain it).
    return load_or_build(path, lambda: fit(kb), "calibrator", also_read=(ROOT / "var" / "cache" / name,),
                         read=use_cache)


_cal: Calibrator | None = None
_lock = threading.Lock()


def shipped_kb():
    """The knowledge base of the repository (faq/data): the one the pairs name."""
    return load(DATA_DIR)


def calibrator() -> Calibrator:
    """The process-wide calibrator, fitted on the repository's KB (whose entries
    the labelled pairs name). A manager's KB edit, or a bigger KB, keeps it: its
    features are scores and margins, not entries."""
    global _cal
    if _cal is None:
        with _lock:
            if _cal is None:
                _cal = build(shipped_kb())
    return _cal
