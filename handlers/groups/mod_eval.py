"""Moderation figures: `python -m handlers.groups.mod_eval [--show]`.

Reports recall (right category) and the false-flag rate on
- the held-out part of handlers/data/train/moderation.jsonl (never trained on:
  see mod_model.split), and
- the group cases (chat vip/building) of ../shared/eval/route_dev*.jsonl,
  through the real router, as `guanjia route --json` would answer them.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from handlers.groups import mod_model
from handlers.groups.moderation import analyse
from handlers.router import route

ROOT = Path(__file__).resolve().parents[2]


def _score(rows: list[tuple[str, set[str]]], verdict) -> tuple[int, int, int, int, list]:
    bad_n = bad_ok = good_n = good_flag = 0
    wrong = []
    for text, accepted in rows:
        got = verdict(text)
        if accepted == {"none"}:
            good_n += 1
            if got != "none":
                good_flag += 1
                wrong.append(("FALSE FLAG", got, text))
        else:
            bad_n += 1
            if got in accepted:
                bad_ok += 1
            else:
                wrong.append(("MISSED " + "|".join(sorted(accepted)), got, text))
    return bad_n, bad_ok, good_n, good_flag, wrong


def _line(name: str, s) -> str:
    bad_n, bad_ok, good_n, good_flag, _ = s
    rec = bad_ok / bad_n if bad_n else 0.0
    ff = good_flag / good_n if good_n else 0.0
    return (f"{name}: violations {bad_ok}/{bad_n} caught ({rec:.1%}), "
            f"ordinary {good_flag}/{good_n} false flags ({ff:.2%})")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    show = "--show" in argv
    _, held = mod_model.split(mod_model.load_corpus())
    s = _score([(r["text"], {r["label"]}) for r in held], lambda t: analyse(t).violation)
    print(_line(f"corpus held-out ({len(held)} lines)", s))
    if show:
        for w in s[4]:
            print("   ", *w)
    for path in sorted((ROOT.parent / "shared" / "eval").glob("route_dev*.jsonl")):
        rows = [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]
        rows = [r for r in rows if r.get("chat") in ("vip", "building") and "violation" in r.get("expect", {})]
        by_text = {r["text"]: r for r in rows}

        def routed(t: str) -> str:
            r = by_text[t]
            return route(t, chat=r["chat"], role=r.get("role", "owner")).contract()["violation"]

        s = _score([(r["text"], set(r["expect"]["violation"])) for r in rows], routed)
        print(_line(path.name + " group cases", s))
        if show:
            for w in s[4]:
                print("   ", *w)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
