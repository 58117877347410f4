"""The candidate entries of one question: each entry's embedding cosine fused with
its BM25 confidence (faq.retrieval decides among them; faq.calibrate learns from them).

`fused = cos + BM25_WEIGHT * bm25_confidence`: cos is the cosine of the entry's closest
phrasing (or its answer), bm25_confidence the matcher's 0..1 score (0 outside its
shortlist). Apart from faq.retrieval so that the calibrator's training can build
candidates without importing the decision that uses the calibrator."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BM25_WEIGHT = 1.0
SHORTLIST = 8


@dataclass
class Candidate:
    entry: object
    fused: float
    cos: float
    bm25: float
    terms: list[str] = field(default_factory=list)
    coverage: float = 0.0  # share of the question's information its words cover (faq.matcher)
    p: float | None = None  # calibrated probability that it answers (faq.calibrate)
    z: float = 0.0

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def score(self) -> float:
        """The calibrated probability (else the fused score on 0..1), for route()'s `score`."""
        if self.p is not None:
            return round(self.p, 3)
        return round(max(0.0, min(1.0, self.fused / (1.0 + BM25_WEIGHT))), 3)


def fuse(cos: np.ndarray, matches: list, entries: list, pos: dict[str, int] | None = None) -> list[Candidate]:
    """Candidates best first: the embedding's top entries and BM25's shortlist
    (pos: entry id -> row, when the caller keeps one)."""
    bm = {m.entry.id: m for m in matches}
    if pos is None:
        pos = {e.id: i for i, e in enumerate(entries)}
    k = min(SHORTLIST, len(entries))
    idx = set(np.argpartition(-cos, k - 1)[:k].tolist()) if len(entries) else set()
    idx |= {pos[i] for i in bm if i in pos}
    out = []
    for i in idx:
        e = entries[i]
        m = bm.get(e.id)
        b = float(m.score) if m else 0.0
        out.append(Candidate(e, float(cos[i]) + BM25_WEIGHT * b, float(cos[i]), b, list(m.terms) if m else [],
                             coverage=float(m.coverage) if m else 0.0))
    out.sort(key=lambda c: -c.fused)
    return out
