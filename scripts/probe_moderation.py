"""Score handlers.groups.moderation.analyse on a probe (tests/data/groups/<name>.jsonl).

Usage: python scripts/probe_moderation.py evasion_probe3.jsonl [-v]
Prints recall in the right category and false flags; -v lists every miss and false flag.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from handlers.groups.moderation import analyse

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "groups"


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")] or ["evasion_probe3.jsonl"]
    verbose = "-v" in argv
    for name in names:
        rows = [json.loads(l) for l in (DATA / name).read_text("utf-8").splitlines() if l.strip()]
        bad = good = caught = wrongcat = flags = 0
        out = []
        for r in rows:
            labels = set(r["label"].split("|"))
            v = analyse(r["text"])
            if labels == {"none"}:
                good += 1
                if v.violation != "none":
                    flags += 1
                    out.append(f"FALSE {v.violation}: {r['text']}  [{v.why}]")
            else:
                bad += 1
                if v.violation in labels:
                    caught += 1
                else:
                    if v.violation != "none":
                        wrongcat += 1
                    out.append(f"MISS {r['label']} got {v.violation}: {r['text']}  [{v.why}]")
        print(f"{name}: recall {caught}/{bad} ({caught / bad:.1%}), wrong category {wrongcat}, "
              f"false flags {flags}/{good}")
        if verbose:
            print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
