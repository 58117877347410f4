"""Which entry answers a question: lexical BM25 (faq.matcher) fused with
sentence embeddings (faq.semantic), and a calibrated decision.

Fusion: per entry, `fused = cos + BM25_WEIGHT * bm25_confidence` where cos is the
cosine of the entry's closest phrasing (or its answer) and bm25_confidence the
matcher's 0..1 score (0 outside its shortlist). The embedding finds the entry
when the owner uses other words; BM25 keeps exact terms (a tier's name, 停车
vs 停水) from being blurred.

Decision (`decide`):
- answer outright when the best entry is close enough (`ANSWER_MIN`) and ahead
  of the runner-up by `MARGIN`, or very close (`SURE`);
- offer 2-3 topics when two entries are genuinely close (within `MARGIN`) and
  both plausible (`CLARIFY_MIN`) - never a one-item menu;
- otherwise nothing fits: the caller hands off.
Thresholds are tuned on tests/data/route_cases.jsonl and the training corpus,
checked on the shared dev sets (`guanjia faq eval`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BM25_WEIGHT = 1.0
ANSWER_MIN = 0.70
SURE = 1.20
MARGIN = 0.05
CLARIFY_MIN = 0.75
SHORTLIST = 8
COS_MIN = 0.60
BM25_ALONE = 0.60
SHORT_SPAN = 0.25
Z_MIN = 2.5
Z_P_MIN = 0.8
COS_FLOOR = 0.45


@dataclass
class Candidate:
    entry: object
    fused: float
    cos: float
    bm25: float
    terms: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def score(self) -> float:
        """The fused score on 0..1, for route()'s `score`."""
        return round(max(0.0, min(1.0, self.fused / (1.0 + BM25_WEIGHT))), 3)


@dataclass
class Decision:
    kind: str  # "answer" | "clarify" | "none"
    ranked: list[Candidate]
    why: str

    @property
    def top(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None


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
        out.append(Candidate(e, float(cos[i]) + BM25_WEIGHT * b, float(cos[i]), b, list(m.terms) if m else []))
    out.sort(key=lambda c: -c.fused)
    return out


def decide(ranked: list[Candidate], p_question: float = 1.0, short: bool = False, z: float = 0.0) -> Decision:
    """p_question: the intent model's probability that this is an FAQ question
    (below 0.4 only a sure match is answered); short: a one- or two-word message
    ("权益"), which fits several entries, so their topics are offered; z: how
    far the best entry's cosine stands above all entries' (in standard
    deviations): a long colloquial question has low cosines everywhere, and its
    entry still stands out."""
    if not ranked:
        return Decision("none", [], "no entry shares anything with the question")
    top = ranked[0]
    second = ranked[1].fused if len(ranked) > 1 else 0.0
    lead = top.fused - second
    desc = (f"z {z:.1f}; best {top.id} score {top.score:.2f} (fused {top.fused:.2f} = cos {top.cos:.2f} + "
            f"{BM25_WEIGHT:g} x bm25 {top.bm25:.2f}), lead {lead:.2f}")
    # Both signals must agree a little: a sentence that merely shares one common
    # word (会员) with an entry, or that is only vaguely similar, is not answered.
    agree = top.cos >= COS_MIN or top.bm25 >= BM25_ALONE or (z >= Z_MIN and top.cos >= COS_FLOOR
                                                            and p_question >= Z_P_MIN)
    if agree and not short and (top.fused >= SURE or (top.fused >= ANSWER_MIN and lead >= MARGIN
                                                      and p_question >= 0.4)):
        return Decision("answer", ranked, desc)
    span = SHORT_SPAN if short else MARGIN
    close = [c for c in ranked[:3] if top.fused - c.fused < span and c.fused >= CLARIFY_MIN]
    if len(close) >= 2:
        return Decision("clarify", close, desc + f"; {len(close)} entries within {MARGIN}")
    if not agree:
        reason = (f"cos < {COS_MIN}, bm25 < {BM25_ALONE}, and not (z >= {Z_MIN}, cos >= {COS_FLOOR}, "
                  f"question >= {Z_P_MIN})")
    elif short:
        reason = "one word, and no two entries equally close"
    elif p_question < 0.4 and top.fused < SURE:
        reason = f"not clearly a question ({p_question:.2f}) and fused < {SURE}"
    else:
        reason = f"fused < {ANSWER_MIN} or lead < {MARGIN}"
    return Decision("none", ranked, f"{desc}; {reason}")


_kbv = None
_kbv_version = -1


def kb_vectors():
    """The current KB's vectors (rebuilt from the disk cache when the KB changes)."""
    global _kbv, _kbv_version
    from faq import matcher, semantic

    m = matcher.default()
    ix = m.index()
    if _kbv is None or _kbv_version != m.store.version:
        _kbv = semantic.KBVectors(ix.kb.entries)
        _kbv_version = m.store.version
    return _kbv


def search(text: str, vec: np.ndarray | None = None, p_question: float = 1.0) -> Decision:
    """The decision for one question (vec: its embedding, when the caller has it)."""
    from faq import matcher, semantic

    ix = matcher.default().index()
    kbv = kb_vectors()
    if vec is None:
        vec = semantic.query_vector(text)
    words, bigrams = ix.tokens(text)
    short = len(set(words)) <= 1 and len(semantic.prepare(text)) <= 4
    cos = kbv.scores(vec)
    ranked = fuse(cos, ix.search(text, 10), ix.kb.entries, kbv.pos)
    seen = cos[cos > -1.0]
    z = float((ranked[0].cos - seen.mean()) / (seen.std() or 1.0)) if ranked and len(seen) > 1 else 0.0
    return decide(ranked, p_question, short, z)


def warm_up() -> None:
    search("银卡会员有哪些权益")
