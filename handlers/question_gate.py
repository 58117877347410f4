"""Is this message a question the knowledge base answers, whatever intent the
intent model leans to? A small learned decision over the model's probabilities,
retrieval's confidence and the lexicons' cues.

Why: the intent model reads words, and an owner's question is often told with a
problem around it ("隔壁楼被偷过 我们这边门禁会加强吗", "修完了谁来验收"): the
model leans to complaint or handoff although the KB holds the answer and
retrieval is sure of it. A fixed rule (answer when retrieval is surer than the
model) was tuned by hand on a few phrasings; this one is fitted on the labelled
corpus (handlers/data/train/), with each line's intent probabilities taken from a
model that never saw that line (two folds), so they are as unsure as on an
owner's fresh words.

Features (`FEATURES`): the model's probability of each intent, retrieval's
calibrated P(its best entry answers) and that entry's cosine, and the cues of
handlers/understanding.py (`cues`): asked as a question, someone living a
problem now, a what-if, words of asking about a plan or a rule, words asking for
a person or naming a complaint, a hazard, the length. Label: the line is `faq`.

The router (handlers/understanding.py) asks it only where the model's intent is
complaint, handoff, booking or membership, never over a reported hazard or
words asking for a person, and answers only when retrieval decided to answer
too. Fitted weights (about a minute on a cache miss) are cached under var/cache, keyed
by the corpus, the KB, the lexicons and this code, and refitted when any changes;
loaded in the worker parent (the capability's warm-up).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from faq import calibrate, intent_model, matcher, normalize, retrieval, semantic
from faq.pickle_cache import load_or_build

log = logging.getLogger(__name__)

INTENTS = ("faq", "complaint", "handoff", "booking", "membership", "smalltalk", "offtopic")
CUES = ("asks", "reports_now", "what_if", "asking_words", "hand", "complaint_words", "hazard", "long")
FEATURES = tuple(f"p_{i}" for i in INTENTS) + ("answer_p", "cos") + CUES
# The intents the gate may turn into an answer (small talk and off-topic never: an
# off-topic question must not be answered with a rule).
OVERRIDABLE = ("complaint", "handoff", "booking", "membership")
# P(faq) at or above which the question is answered. Chosen on the training folds
# for few real complaints answered (they would open no ticket), checked on the dev sets.
ANSWER_MIN = 0.5
FOLDS = 2


@dataclass
class Gate:
    w: np.ndarray
    b: float
    mean: np.ndarray
    scale: np.ndarray
    n_lines: int = 0

    def proba(self, x: np.ndarray) -> float:
        z = float(((x - self.mean) / self.scale) @ self.w + self.b)
        return 1.0 / (1.0 + np.exp(-z))

    def explain(self, x: np.ndarray, k: int = 3) -> str:
        """The features that weighed most in this decision, for `why`."""
        contrib = ((x - self.mean) / self.scale) * self.w
        order = np.argsort(-np.abs(contrib))[:k]
        return ", ".join(f"{FEATURES[i]} {contrib[i]:+.1f}" for i in order)


def features(pi: Mapping[str, float], answer_p: float, cos: float, cues: Mapping[str, float]) -> np.ndarray:
    """One message's feature row (pi: the intent model's probabilities)."""
    return np.array([pi.get(i, 0.0) for i in INTENTS] + [answer_p, cos] + [float(cues.get(c, 0.0)) for c in CUES],
                    dtype=np.float32)


def _fold(text: str) -> int:
    return int(hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:8], 16) % FOLDS


def training_rows(cues_of: Callable[[str], Mapping[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of every owner line of the corpus (not the KB's own phrasings:
    retrieval finds those word for word)."""
    kb_entries = matcher.default().store.get().entries
    examples = intent_model.load_corpus(kb_entries=kb_entries)
    owners = [e for e in examples if e.source != "kb"]
    kb_lines = [e for e in examples if e.source == "kb"]
    vecs = semantic.cached_vectors("train", [semantic.prepare(e.text) for e in owners])
    xs, ys = [], []
    for f in range(FOLDS):
        fold_model = intent_model.Model(intent_model.wrapped([e for e in owners if _fold(e.text) != f] + kb_lines))
        for e, v in zip(owners, vecs):
            if _fold(e.text) != f:
                continue
            pi, _ = fold_model.predict(e.text, v)
            d = retrieval.search(e.text, v, pi.get("faq", 0.0))
            top = d.top
            xs.append(features(pi, top.p if top and top.p is not None else 0.0, top.cos if top else 0.0,
                               cues_of(e.text)))
            ys.append(int(e.intent == "faq"))
    return np.array(xs, dtype=np.float32), np.array(ys, dtype=np.int8)


def fit(cues_of: Callable[[str], Mapping[str, float]]) -> Gate:
    from sklearn.linear_model import LogisticRegression

    x, y = training_rows(cues_of)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=1.0, max_iter=1000)
    lr.fit((x - mean) / scale, y)
    gate = Gate(np.asarray(lr.coef_[0], dtype=np.float32), float(lr.intercept_[0]), mean.astype(np.float32),
                scale.astype(np.float32), len(y))
    log.info("question gate fitted on %d lines", len(y))
    return gate


def _key(extra: tuple[Path, ...]) -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve()
    for p in (here, *extra, *intent_model.CORPUS_FILES, Path(intent_model.__file__), Path(calibrate.__file__),
              *normalize.KEY_FILES):
        if p.exists():
            h.update(p.read_bytes())
    for e in matcher.default().store.get().entries:
        h.update(f"{e.id}\x00{'|'.join(e.questions)}\x00{e.answer}\x01".encode())
    return h.hexdigest()[:16]


_gate: Gate | None = None
_lock = threading.Lock()


def gate(cues_of: Callable[[str], Mapping[str, float]], cue_files: tuple[Path, ...] = ()) -> Gate:
    """The process-wide gate (cue_files: the lexicons the cues read, part of the cache key)."""
    global _gate
    if _gate is None:
        with _lock:
            if _gate is None:
                _gate = build(cues_of, cue_files)
    return _gate


def build(cues_of: Callable[[str], Mapping[str, float]], cue_files: tuple[Path, ...] = (),
          use_cache: bool = True) -> Gate:
    name = f"question-gate-{semantic.model_name()}-{_key(cue_files)}.pickle"
    root = Path(__file__).resolve().parent.parent
    return load_or_build(semantic._var() / name, lambda: fit(cues_of), "question gate",
                         also_read=(root / "var" / "cache" / name,), read=use_cache)
