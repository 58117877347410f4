"""A small learned second opinion beside the moderation rules.

Multinomial logistic regression over character 1-3-grams of the normal form
(mod_normalize), trained with numpy on handlers/data/train/moderation.jsonl at
first use (well under a second; deterministic, so `guanjia route` and the
worker agree). Numbers are reduced to their shape before n-grams are taken
(an 11-digit run starting 1[3-9] is a phone, other runs are "a number of n
digits"), so the model learns "a phone after 电话" rather than the digits.

The rules decide the clear cases; the model only adds a verdict when the rules
found nothing and it is very sure (THRESHOLD), or fairly sure with a weak sign
of the same category (SUPPORTED); both chosen so that no ordinary line of the
held-out split or of tests/data/groups is flagged: false flags are worse than
misses.

Held-out split: a line whose text hashes (sha1) into bucket 0-1 of 10 is never
trained on (`split`); handlers/groups/mod_eval.py reports on it.
"""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from faq.ngrams import char_ngrams, softmax
from ground.rules import RulesError, read_jsonl
from handlers.groups.mod_lexicon import CORPUS, DATA_FILE, compact
LABELS = ("none", "ad", "insult", "privacy", "illegal")
THRESHOLD = 0.92  # the model alone
SUPPORTED = 0.75  # the model with a weak word of the same category
NGRAMS = (1, 2, 3)
MAX_CHARS = 2000  # a longer message is judged on its head and tail (bounded cost)


CorpusError = RulesError  # the one error type of rule files (ground/rules.py)


def load_corpus(path: Path = CORPUS) -> list[dict]:
    rows = []
    for n, row in read_jsonl(path):
        if not isinstance(row, dict):
            raise CorpusError(f"{path.name}:{n}: not a JSON object")
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            raise CorpusError(f"{path.name}:{n}: text missing")
        if row.get("label") not in LABELS:
            raise CorpusError(f"{path.name}:{n}: label must be one of {LABELS}")
        rows.append(row)
    return rows


def held_out(text: str) -> bool:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % 10 < 2


def split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(train, held-out): about 80 / 20, fixed by each text's hash."""
    train = [r for r in rows if not held_out(r["text"])]
    held = [r for r in rows if held_out(r["text"])]
    return train, held


_DIGITS = re.compile(r"\d+")


def _shape(m: re.Match) -> str:
    d = m.group(0)
    if len(d) == 11 and d[0] == "1" and d[1] in "3456789":
        return "\ue001"  # a mobile number
    if len(d) >= 15:
        return "\ue002"  # an ID or card number
    if len(d) >= 5:
        return "\ue003"  # a long number (QQ, order, account)
    return "\ue004" * len(d)  # short numbers keep their length: 302, 8:30


def features(text: str) -> list[str]:
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS // 2] + " " + text[-MAX_CHARS // 2:]
    comp = _DIGITS.sub(_shape, compact(text))
    comp = "^" + comp + "$"
    return list(char_ngrams(comp, NGRAMS))


class Model:
    def __init__(self, vocab: dict[str, int], weights: np.ndarray, bias: np.ndarray):
        self.vocab, self.W, self.b = vocab, weights, bias

    def proba(self, text: str) -> dict[str, float]:
        idx = [self.vocab[f] for f in features(text) if f in self.vocab]
        z = self.b.copy()
        if idx:
            z += self.W[idx].sum(axis=0) / np.sqrt(len(idx))
        p = softmax(z)
        return {lab: float(p[i]) for i, lab in enumerate(LABELS)}

    def predict(self, text: str) -> tuple[str, float]:
        p = self.proba(text)
        lab = max(p, key=p.get)
        return lab, p[lab]


def train(rows: list[dict], epochs: int = 100, l2: float = 1e-5, lr: float = 2.0) -> Model:
    """Full-batch gradient descent (Adam) on the softmax loss, sparse by hand."""
    vocab: dict[str, int] = {}
    doc_rows, cols = [], []
    for i, r in enumerate(rows):
        for f in set(features(r["text"])):
            doc_rows.append(i)
            cols.append(vocab.setdefault(f, len(vocab)))
    n, v, k = len(rows), len(vocab), len(LABELS)
    doc_rows_a, cols_a = np.array(doc_rows), np.array(cols)
    lengths = np.bincount(doc_rows_a, minlength=n).astype(np.float64)
    vals = 1.0 / np.sqrt(lengths[doc_rows_a])
    y = np.zeros((n, k))
    y[np.arange(n), [LABELS.index(r["label"]) for r in rows]] = 1.0
    # Ordinary talk weighs more: a false flag costs more than a miss.
    sample_w = np.where(y[:, 0] == 1, 1.5, 1.0)
    W, b = np.zeros((v, k)), np.zeros(k)
    mW, vW, mb, vb = np.zeros_like(W), np.zeros_like(W), np.zeros(k), np.zeros(k)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for t in range(1, epochs + 1):
        contrib = W[cols_a] * vals[:, None]
        z = np.zeros((n, k))
        for j in range(k):
            z[:, j] = np.bincount(doc_rows_a, weights=contrib[:, j], minlength=n)
        z += b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - y) * sample_w[:, None] / n
        gW = np.empty_like(W)
        ge = g[doc_rows_a] * vals[:, None]
        for j in range(k):
            gW[:, j] = np.bincount(cols_a, weights=ge[:, j], minlength=v)
        gW += l2 * W
        gb = g.sum(axis=0)
        mW = beta1 * mW + (1 - beta1) * gW
        vW = beta2 * vW + (1 - beta2) * gW * gW
        mb = beta1 * mb + (1 - beta1) * gb
        vb = beta2 * vb + (1 - beta2) * gb * gb
        corr = np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        W -= lr * 0.1 * corr * mW / (np.sqrt(vW) + eps)
        b -= lr * 0.1 * corr * mb / (np.sqrt(vb) + eps)
    return Model(vocab, W.astype(np.float32), b.astype(np.float32))


TRAINING = "v2 epochs=100 lr=2.0 l2=1e-5 ngrams=1,2,3"  # change it when train() changes


def _cache_key() -> str:
    """The trained weights depend on the corpus, on the normal form (moderation.yaml's
    variants and pinyin words) and on the training settings."""
    h = hashlib.sha1(TRAINING.encode())
    h.update(CORPUS.read_bytes())
    h.update(DATA_FILE.read_bytes())
    return h.hexdigest()[:16]


def cache_path() -> Path:
    import os

    var = Path(os.environ.get("GUANJIA_VAR_DIR") or Path.cwd() / "var")
    return var / "cache" / f"moderation-model-{_cache_key()}.npz"


def _load_cached() -> Model | None:
    path = cache_path()
    try:
        with np.load(path, allow_pickle=False) as z:
            vocab = {f: i for i, f in enumerate(z["vocab"].tolist())}
            return Model(vocab, z["W"], z["b"])
    except (OSError, KeyError, ValueError):
        return None


def save_cache(m: Model) -> Path | None:
    """Written by the worker's warm-up only (route() stays free of side effects)."""
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        vocab = np.array(sorted(m.vocab, key=m.vocab.get))
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, vocab=vocab, W=m.W, b=m.b)
        tmp.replace(path)
        return path
    except OSError:
        return None


@lru_cache(maxsize=1)
def model() -> Model:
    """Trained on the corpus less its held-out lines (so the held-out figures are
    honest); read from the warm-up's cache file when the corpus and rules are unchanged."""
    cached = _load_cached()
    if cached is not None:
        return cached
    train_rows, _ = split(load_corpus())
    return train(train_rows)


def opinion(text: str, support: set[str] = frozenset()) -> tuple[str, float] | None:
    """(category, probability) when the model is sure of a violation, else None.
    `support`: categories the rules saw a weak sign of (a lower bar for those)."""
    lab, p = model().predict(text)
    if lab in ("none", "privacy"):
        return None
    if p >= THRESHOLD or (lab in support and p >= SUPPORTED):
        return lab, p
    return None
