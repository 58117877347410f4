"""Where a message's time goes on /wechat/mp under load (bench/PROFILE.md reads this).

    .venv/bin/python bench/profile_mp.py [--seconds 10] [--connections 32] [--rate 100] [--out DIR]

Starts the stack of bench/ingress.py with only our server (redis-server, fake platform,
`guanjia serve` = gunicorn gthread 2 x 16, 2 x `guanjia worker`, temp SQLite), loads it
with the same client (open loop at --rate: a steady load the machine can carry, so the
profile is of the work, not of a queue), and samples every web and worker process with
py-spy (bench extra) meanwhile: `py-spy record --format raw --nonblocking --subprocesses`
(threads py-spy sees as idle are not counted: on a loaded machine a thread woken from a
socket read but waiting for a core still counts; --gil samples only the GIL holder). The collapsed stacks
(DIR/web.txt, DIR/worker.txt) are then put into the steps of a message by the first rule
that matches a stack (RULES, top to bottom), and printed as a share of the samples and as
CPU ms per message (the share times the CPU the processes used per message, from /proc).
Bounded: py-spy's --duration and the client's request count end it; needs root or
ptrace rights (py-spy attaches to the processes).
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingress import Stack, build_requests, closed_loop, cpu_seconds, open_loop, settle  # noqa: E402

# (step, substrings that must all be in the stack): first match wins, so the specific
# steps come before the catch-alls. Frames look like "function (path/file.py:line)".
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("signature (URL + message SHA1)", ("bot/channels/common.py", "check_signature")),
    ("signature (URL + message SHA1)", ("verify (bot/channels/crypto.py",)),
    ("decrypt (AES-CBC)", ("decrypt (bot/channels/crypto.py",)),
    ("parse XML (defusedxml)", ("parse_xml (bot/channels/common.py",)),
    ("parse: to Message (normalize)", ("open (bot/channels/mp.py",)),
    ("reply encryption + XML", ("render_reply (bot/channels/mp.py",)),
    ("dedup (Redis SET NX)", ("accept (bot/inbox.py", "set (redis")),
    ("Redis: LPUSH to the lane", ("_enqueue_job (bot/inbox.py",)),
    ("inbox INSERT + COMMIT (web)", ("accept (bot/inbox.py",)),
    ("Redis: wait for the reply (BLPOP)", ("wait_for_reply (bot/inbox.py",)),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("routing + handling: DB look-ups", ("handle (handlers/dispatch.py", "sqlalchemy")),
    ("routing + handling (pure)", ("handle (handlers/dispatch.py",)),
    ("Redis: passive claim + hand-over", ("_claim_passive (bot/tasks.py",)),
    ("Redis: passive claim + hand-over", ("_hand_over (bot/tasks.py",)),
    ("outbox queue/send", ("queue_send",)),
    ("outbox queue/send", ("send_outbox",)),
    ("worker claim/outcome UPDATE + COMMIT", ("process_inbox (bot/tasks.py", "sqlalchemy")),
    ("worker claim/outcome UPDATE + COMMIT", ("process_inbox (bot/tasks.py", "sqlite3")),
    ("worker: other handling code", ("process_inbox (bot/tasks.py",)),
    ("Redis: worker BRPOP on the lane", ("pop_and_process (bot/inbox.py",)),
    ("logging", ("logging/__init__.py",)),
    ("HTTP: gunicorn + Flask/werkzeug", ("gunicorn/",)),
    ("HTTP: gunicorn + Flask/werkzeug", ("flask/",)),
    ("HTTP: gunicorn + Flask/werkzeug", ("werkzeug/",)),
    ("worker loop (rq, sweeper, threads)", ("rq/",)),
]


def classify(collapsed: Path) -> Counter:
    """Samples per step from py-spy's raw (collapsed) output: `frame;frame;... count`."""
    steps: Counter = Counter()
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        step = next((name for name, needles in RULES if all(n in stack for n in needles)), "other")
        steps[step] += int(count)
    return steps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rate", type=float, default=100.0, help="requests/s, open loop (0: closed loop, max pace)")
    ap.add_argument("--connections", type=int, default=32, help="closed loop only")
    ap.add_argument("--gil", action="store_true",
                    help="py-spy --gil: sample only the thread holding the GIL (Python CPU work; misses C code "
                         "that releases it, such as SQLite's step); default: every thread not idle")
    ap.add_argument("--out", default=None, help="keep the collapsed stacks here (default: a temp dir)")
    args = ap.parse_args()
    if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        print("py-spy is needed: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = Path(args.out or tempfile.mkdtemp(prefix="guanjia-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    stack = Stack(2, 2, servers=("ours",))
    workers = ["worker0", "worker1"]
    try:
        stack.start()
        port = stack.ports["ours"]
        n = int(max(args.rate, 1) * args.seconds) if args.rate else args.seconds * 4000
        reqs = build_requests(port, n, 300_000_000)
        asyncio.run(closed_loop(port, build_requests(port, 200, 290_000_000), 8, 2))  # warm up
        groups = {"web": stack.pids("ours"), "worker": stack.pids(*workers)}
        settle(groups["web"] + groups["worker"] + stack.pids("redis"))
        spies = [subprocess.Popen([pyspy, "record", "--format", "raw", "--nonblocking", "--subprocesses",
                                   "--rate", "100", *(["--gil"] if args.gil else []), "--duration", str(args.seconds + 1), "-o",
                                   str(out / f"{kind}-{pid}.txt"), "--pid", str(pid)],
                                  stdout=subprocess.DEVNULL, stderr=open(out / "py-spy.log", "ab"))
                 for kind, pids in groups.items() for pid in pids]
        time.sleep(1.0)  # py-spy attached
        all_pids = groups["web"] + groups["worker"] + stack.pids("redis")
        c0 = {k: cpu_seconds(v) for k, v in groups.items()} | {"redis": cpu_seconds(stack.pids("redis"))}
        if args.rate:
            res = asyncio.run(open_loop(port, reqs, args.rate, args.seconds))
        else:
            res = asyncio.run(closed_loop(port, reqs, args.connections, args.seconds))
        settle(all_pids)
        cpu = {k: (cpu_seconds(stack.pids("redis")) if k == "redis" else cpu_seconds(groups[k])) - v
               for k, v in c0.items()}
        for p in spies:
            p.wait(args.seconds + 60)
    finally:
        stack.stop()

    msgs = max(1, res["n"])
    print(f"{res['n']} messages in {args.seconds} s ({res['rps']:.0f} req/s, p50 {res['p50_ms']:.1f} ms, "
          f"p99 {res['p99_ms']:.1f} ms, errors {res['errors']}); CPU per message: "
          + ", ".join(f"{k} {v / msgs * 1000:.2f} ms" for k, v in cpu.items())
          + f", total {sum(cpu.values()) / msgs * 1000:.2f} ms")
    for kind in ("web", "worker"):
        files = sorted(out.glob(f"{kind}-*.txt"))
        merged = out / f"{kind}.txt"
        merged.write_text("".join(f.read_text(errors="replace") for f in files))
        steps = classify(merged)
        total = sum(steps.values()) or 1
        per_msg = cpu[kind] / msgs * 1000
        print(f"\n{kind} processes: {total} samples, {per_msg:.2f} ms CPU per message")
        for step, count in steps.most_common():
            print(f"  {step:<40} {100 * count / total:5.1f}%  {per_msg * count / total:6.3f} ms")
    print(f"\ncollapsed stacks: {out}/web.txt, {out}/worker.txt (flamegraph.pl or speedscope read them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
