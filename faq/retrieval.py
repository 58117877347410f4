"""Which entry answers a question: lexical BM25 (faq.matcher) fused with
sentence embeddings (faq.semantic) into candidates (faq.candidates), and a
calibrated decision.

The embedding finds the entry when the owner uses other words; BM25 keeps exact
terms (a tier's name, 停车 vs 停水) from being blurred.

Decision (`decide`), from faq.calibrate's probabilities:
- answer outright when P(the best candidate is right) reaches `P_ANSWER`;
- offer 2-3 topics when the best is not sure alone and others are about as likely
  (`P_CLARIFY`, `P_SPAN`) - never a one-item menu; a one-word message ("权益")
  offers the entries close to it (`SHORT_SPAN`, `CLARIFY_MIN` on the fused score);
- otherwise, when P reaches `P_HEDGE`, answer the best candidate with a hedge
  (the owner is told it may not be what they meant and how to reach a person;
  managers see it among the questions to check): most such questions are
  answered right, and a hand-off makes every owner wait for a person;
- otherwise nothing fits: the caller hands off.
Thresholds are chosen on tests/data/route_cases.jsonl and the training corpus,
checked on the shared dev sets (`guanjia faq eval`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faq import calibrate, matcher, semantic
from faq.calibrate import _z, unknown_share
from faq.candidates import Candidate, fuse

CLARIFY_MIN = 0.75
SHORT_SPAN = 0.25


@dataclass
class Decision:
    kind: str  # "answer" | "clarify" | "hedge" | "none"
    ranked: list[Candidate]
    why: str

    @property
    def top(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None


# The learned decision (faq.calibrate): P(the entry answers the question).
P_ANSWER = 0.35
# Otherwise, when the best candidate's ranking score reaches P_CLARIFY, offer it
# with those within P_SPAN of it (relative): two or three genuinely close topics.
P_CLARIFY = 0.25
P_SPAN = 0.3
# Below P_ANSWER and at least this: answered with a hedge. Chosen on the shared dev
# sets (2026-12-02: 0.12-0.28 gave the same answers there, none of their off-topic
# or hand-off cases answered); off-topic questions are kept out by the intent model
# and by the unknown-words share inside P.
P_HEDGE = 0.2
# ... and only when nearly all its words are the KB's: "附近有没有好的钢琴老师" (half its
# words unknown) shares only 附近/推荐 with an entry, and a wrong guess there is worse
# than a person.
HEDGE_UNKNOWN_MAX = 0.25


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
    if p_answer >= P_HEDGE and unknown <= HEDGE_UNKNOWN_MAX:
        return Decision("hedge", ranked, f"{desc}; {P_HEDGE} <= p < {P_ANSWER}: answered with a hedge")
    why = f"p < {P_HEDGE}" if p_answer < P_HEDGE else f"p < {P_ANSWER}, and unknown words over {HEDGE_UNKNOWN_MAX}"
    return Decision("none", ranked, f"{desc}; {why}")


_kbv = None
_kbv_version = -1


def kb_vectors():
    """The current KB's vectors (rebuilt from the disk cache when the KB changes)."""
    global _kbv, _kbv_version
    m = matcher.default()
    ix = m.index()
    if _kbv is None or _kbv_version != m.store.version:
        _kbv = semantic.KBVectors(ix.kb.entries)
        _kbv_version = m.store.version
    return _kbv


def search(text: str, vec: np.ndarray | None = None, p_question: float = 1.0) -> Decision:
    """The decision for one question (vec: its embedding, when the caller has it)."""
    ix = matcher.default().index()
    kbv = kb_vectors()
    if vec is None:
        vec = semantic.query_vector(text)
    words, bigrams = ix.tokens(text)
    short = len(set(words)) <= 1 and len(semantic.prepare(text)) <= 4
    cos = kbv.scores(vec)
    ranked = fuse(cos, ix.search(text, 10), ix.kb.entries, kbv.pos)
    return decide(ranked, p_question, short, _z(cos, ranked) if ranked else 0.0, len(semantic.prepare(text)),
                  unknown_share(ix, text))


def warm_up() -> None:
    calibrate.calibrator()
    search("银卡会员有哪些权益")
