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
        out.append(Candidate(e, float(cos[i]) + BM25_WEIGHT * b, float(cos[i]), b, list(m.terms) if m else [],
                             coverage=float(m.coverage) if m else 0.0))
    out.sort(key=lambda c: -c.fused)
    return out


# The learned decision (faq.calibrate): P(the entry answers the question).
P_ANSWER = 0.35
# Otherwise, when the best candidate's ranking score reaches P_CLARIFY, offer it
# with those within P_SPAN of it (relative): two or three genuinely close topics.
P_CLARIFY = 0.25
P_SPAN = 0.3


def decide(ranked: list[Candidate], p_question: float = 1.0, short: bool = False, z: np.ndarray | float = 0.0,
           n_chars: int = 20, unknown: float = 0.0) -> Decision:
    """p_question: the intent model's probability that this is an FAQ question;
    short: a one- or two-word message ("权益"), which fits several entries, so
    their topics are offered; z: each candidate's cosine in standard
    deviations above the whole KB's (a long colloquial question has low
    cosines everywhere, and its entry still stands out); unknown: the share
    of the question's words that no entry uses (off-topic questions).

    The calibrator (faq.calibrate) turns each candidate's signals into the
    probability that it answers the question; candidates are ranked by it."""
    from faq import calibrate

    if not ranked:
        return Decision("none", [], "no entry shares anything with the question")
    z_all = np.broadcast_to(np.asarray(z, dtype=np.float32), (len(ranked),))
    cal = calibrate.calibrator()
    x = calibrate.features(ranked, z_all, p_question, n_chars)
    p = cal.proba(x)
    p_answer = cal.answer_proba(p, float(x[0, calibrate.FEATURES.index("long")]), unknown)
    for c, pc, zc in zip(ranked, p, z_all):
        c.p, c.z = float(pc), float(zc)
    ranked = sorted(ranked, key=lambda c: -c.p)
    top = ranked[0]
    p2 = ranked[1].p if len(ranked) > 1 else 0.0
    desc = (f"best {top.id} score {p_answer:.2f} (calibrated P(right); ranking {max(p):.2f} from "
            f"fused {top.fused:.2f} = cos {top.cos:.2f} + bm25 {top.bm25:.2f}, z {top.z:.1f}, "
            f"question {p_question:.2f}, unknown words {unknown:.2f}), "
            f"next {ranked[1].id + ' %.2f' % p2 if len(ranked) > 1 else 'none'}")
    if short:
        # One topic word fits several entries: offer those close by the fused score.
        by_fused = sorted(ranked, key=lambda c: -c.fused)
        close = [c for c in by_fused[:3] if by_fused[0].fused - c.fused < SHORT_SPAN and c.fused >= CLARIFY_MIN]
        if len(close) >= 2:
            return Decision("clarify", close, desc + f"; one word, {len(close)} entries close")
        return Decision("none", ranked, desc + "; one word, and no two entries equally close")
    if p_answer >= P_ANSWER:
        top.p = p_answer  # its score: the probability that answering it is right
        return Decision("answer", ranked, desc)
    # Not sure of the best alone: offer it with those about as likely (ranking scores).
    best = max(p)
    close = [c for c in ranked[:3] if c.p >= (1 - P_SPAN) * best] if best >= P_CLARIFY else []
    top.p = p_answer
    if len(close) >= 2:
        return Decision("clarify", close, desc + f"; {len(close)} entries about as likely")
    return Decision("none", ranked, f"{desc}; p < {P_ANSWER}")


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
    from faq.calibrate import _z, unknown_share

    return decide(ranked, p_question, short, _z(cos, ranked) if ranked else 0.0, len(semantic.prepare(text)),
                  unknown_share(ix, text))


def warm_up() -> None:
    from faq import calibrate

    calibrate.calibrator()
    search("银卡会员有哪些权益")
