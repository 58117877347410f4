"""Fan-out benchmark (issue 16): one campaign to many owners against the fake platform,
its sender killed half-way and restarted.

    .venv/bin/python bench/fanout.py [--recipients 100000] [--per-minute 600] [--window-scale 0.1]
                                     [--kill SIGKILL|SIGTERM|none] [--max-seconds N]

Starts its own redis-server and fake platform (127.0.0.1), a fresh SQLite database and N
owners, then sends one emergency announcement to all of them from a sender process (this
script with --sender, doing what a "bulk" worker does: run_chunk until nothing is left).
When the platform has seen half of the messages the sender is killed (SIGKILL by default:
no chance to tidy up) and a new one resumes once the dead one's lease lapses. The limit's
"minute" is shrunk by --window-scale so a run covers many windows quickly; at the defaults
the pace is 100 msg/s, so 100,000 recipients take ~17 minutes, and --per-minute raises it.

Prints one verdict line per target:
- throughput >= 95% of the configured limit while a sender runs (the restart gap, one lease,
  is printed but not counted against the pace);
- never over the limit in any window (as the platform stamped the calls);
- peak memory of each sender < 200 MB (VmHWM, polled from /proc);
- nobody sent twice across the kill, and nobody silently skipped (a row in flight at the
  kill is held back as `unknown` on the Official Account, which has no duplicate check).
Bounded: a watchdog (--max-seconds, default from the expected send time) stops the run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEMORY_LIMIT_MB = 200.0
LEASE_SECONDS = 3  # the dead sender's lock lapses this fast (production: 10 s)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int) -> None:
    import socket

    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing on port {port}")


def busiest_window(times: list[float], window: float) -> tuple[int, float | None]:
    """The most calls the platform saw in any `window` seconds (times sorted), and the
    time of the last call of that window (None without calls)."""
    best, at, j = 0, None, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        if i - j + 1 > best:
            best, at = i - j + 1, t
    return best, at


def max_in_window(times: list[float], window: float) -> int:
    return busiest_window(times, window)[0]


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a live process (Linux), in MiB; 0 once it is gone."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def sender(campaign_id: int) -> int:
    """The sender process: run the campaign's chunks until nothing is left for it."""
    from bot.campaigns import run_chunk

    res: dict = {}
    while True:
        res = run_chunk(campaign_id, max_seconds=60)
        if res.get("state") == "busy":  # a dead predecessor's lease has not lapsed yet
            time.sleep(0.2)
            continue
        if not res.get("more"):
            break
    print(json.dumps({"result": res, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
                     default=str), flush=True)
    return 0


def _schedule_file(work: Path) -> Path:
    from handlers.schedule.config import SCHEDULE_FILE

    text = SCHEDULE_FILE.read_text(encoding="utf-8")
    if "  lease_seconds: 10 " not in text:
        raise SystemExit("handlers/schedule/schedule.yaml changed: update bench/fanout.py's lease override")
    path = work / "schedule.yaml"
    path.write_text(text.replace("  lease_seconds: 10 ", f"  lease_seconds: {LEASE_SECONDS} "), encoding="utf-8")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipients", type=int, default=100_000)
    ap.add_argument("--per-minute", type=int, default=600, help="per-app limit per (scaled) minute")
    ap.add_argument("--window-scale", type=float, default=0.1, help="the limit's minute lasts 60*scale seconds")
    ap.add_argument("--kill", default="SIGKILL", choices=["SIGKILL", "SIGTERM", "none"],
                    help="signal for the sender once half the messages are out")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop the run after this long (default: 2 x the expected send time + 120 s)")
    ap.add_argument("--sender", type=int, default=None, help=argparse.SUPPRESS)  # internal: the sender process
    args = ap.parse_args()
    if args.sender is not None:
        return sender(args.sender)

    window = 60 * args.window_scale
    limit_rate = args.per_minute / window
    budget = args.max_seconds or 2 * args.recipients / limit_rate + 120
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="guanjia-bench-"))
    rport, fport = _free_port(), _free_port()
    procs = [subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(rport), "--bind",
                               "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(work)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen([sys.executable, "-m", "bot", "dev", "fake-platform", "--port", str(fport)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    senders: list[subprocess.Popen] = []
    try:
        _wait(rport), _wait(fport)
        base = f"http://127.0.0.1:{fport}"
        os.environ.update({
            "DATABASE_URL": f"sqlite:///{work / 'bench.db'}", "REDIS_URL": f"redis://127.0.0.1:{rport}/0",
            "GUANJIA_VAR_DIR": str(work), "WECHAT_APPID": "wxbench000000001", "WECHAT_SECRET": "s",
            "WECHAT_TOKEN": "t", "WECHAT_API_BASE": base, "WECOM_API_BASE": base,
            "GUANJIA_WECOM_APP_PER_MINUTE": str(args.per_minute), "GUANJIA_SCHED_TIME_SCALE": str(args.window_scale),
            "GUANJIA_RATE_INLINE_WAIT_S": "5", "GUANJIA_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
        })
        os.environ["GUANJIA_SCHEDULE_FILE"] = str(_schedule_file(work))
        import requests
        from sqlalchemy import func, insert, select

        from ground import clock
        from store.migrate import upgrade

        upgrade(os.environ["DATABASE_URL"])
        from bot.campaigns import create_campaign
        from store.db import session_scope
        from store.models import Delivery, Owner

        with session_scope() as s:
            for lo in range(0, args.recipients, 10_000):  # in slices: the list of rows stays small
                s.execute(insert(Owner), [{"name": f"业主{i}", "openid": f"o_bench_{i}", "tier": "普通",
                                           "created_at": clock.now()}
                                          for i in range(lo, min(args.recipients, lo + 10_000))])
            cid = create_campaign(s, kind="announcement", title="bench", text="小区通知：本周六上午消防演练。",
                                  target={"everyone": True}, emergency=True, created_by="bench").id
        http = requests.Session()

        def sent_so_far() -> int:
            return int(http.get(base + "/_stats", timeout=30).json()["sent"])

        def spawn() -> subprocess.Popen:
            p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--sender", str(cid)], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=open(work / "sender.log", "ab"), text=True,
                                 start_new_session=True)
            senders.append(p)
            return p

        def over_budget() -> bool:
            return time.monotonic() - started > budget

        peaks: list[float] = []
        t0 = time.monotonic()
        p = spawn()
        peak = 0.0
        at_kill, killed_at = None, None
        if args.kill != "none":
            while sent_so_far() < args.recipients // 2:
                if p.poll() is not None or over_budget():
                    raise SystemExit(f"sender stopped before half-way (rc={p.poll()}); see log:\n"
                                     + (work / "sender.log").read_text(errors="replace")[-3000:])
                peak = max(peak, vm_hwm_mb(p.pid))
                time.sleep(0.2)
            peak = max(peak, vm_hwm_mb(p.pid))
            os.killpg(p.pid, getattr(signal, args.kill))
            p.wait(30)
            killed_at, at_kill = time.monotonic(), sent_so_far()
            peaks.append(peak)
            p, peak = spawn(), 0.0
        while p.poll() is None:
            if over_budget():
                raise SystemExit(f"watchdog: not done after {budget:.0f} s")
            peak = max(peak, vm_hwm_mb(p.pid))
            time.sleep(0.2)
        out = p.stdout.read().strip().splitlines()
        if p.returncode != 0 or not out:
            raise SystemExit("sender failed; see log:\n" + (work / "sender.log").read_text(errors="replace")[-3000:])
        final = json.loads(out[-1])
        peaks.append(max(peak, final["maxrss_mb"]))
        elapsed = time.monotonic() - t0

        sent = http.get(base + "/_sent", timeout=120).json()
        times = sorted(e["time"] for e in sent)
        per_user = Counter((e.get("json") or {}).get("touser") for e in sent)
        del sent
        with session_scope() as s:
            states = dict(s.execute(select(Delivery.state, func.count()).where(Delivery.campaign_id == cid)
                                    .group_by(Delivery.state)).all())
            unknown = {a for (a,) in s.execute(select(Delivery.address).where(Delivery.campaign_id == cid,
                                                                              Delivery.state == "unknown"))}
        everyone = {f"o_bench_{i}" for i in range(args.recipients)}
        missing = everyone - set(per_user)
        twice = sorted(u for u, c in per_user.items() if c > 1)
        # The pace while a sender runs: the platform's first to last call of each sender,
        # split at the kill (the restart gap is one lease plus a process start).
        if killed_at is not None and at_kill:
            first, second = times[:at_kill], times[at_kill:]
            active = (first[-1] - first[0]) + ((second[-1] - second[0]) if len(second) > 1 else 0.0)
            gap = (second[0] - first[-1]) if second else 0.0
            phases = [(len(first) - 1) / (first[-1] - first[0]) if len(first) > 1 and first[-1] > first[0] else 0.0,
                      (len(second) - 1) / (second[-1] - second[0]) if len(second) > 1 and second[-1] > second[0] else 0.0]
        else:
            active, gap = (times[-1] - times[0]) if len(times) > 1 else 0.0, 0.0
            phases = []
        rate = (len(times) - (2 if killed_at else 1)) / active if active > 0 else float("nan")
        busiest, busiest_at = busiest_window(times, window)
        kill_t = times[at_kill - 1] if killed_at is not None and at_kill else None

        print(f"recipients           {args.recipients}")
        print(f"delivered            {len(times)} calls; deliveries {states}")
        print(f"elapsed              {elapsed:.1f} s (sending {active:.1f} s, restart gap {gap:.1f} s)")
        if phases:
            print("pace per sender      " + ", ".join(f"sender {i + 1}: {r:.1f} msg/s" for i, r in enumerate(phases)))
        print(f"configured limit     {args.per_minute} per {window:g} s = {limit_rate:.1f} msg/s")
        print(f"kill                 {args.kill} at {at_kill} of {args.recipients} sent" if at_kill is not None
              else "kill                 none")
        print(f"peak memory          " + ", ".join(f"sender {i + 1}: {m:.1f} MiB" for i, m in enumerate(peaks)))
        if busiest_at is not None:  # where it was: a window that spans the restart points at the recovery
            print(f"busiest window       ends {busiest_at - times[0]:.1f} s after the first call"
                  + (f" (the kill: {kill_t - times[0]:.1f} s)" if kill_t is not None else ""))
        checks = [
            (f"throughput {rate:.1f} msg/s = {100 * rate / limit_rate:.1f}% of the limit (>= 95%)",
             rate >= 0.95 * limit_rate),
            (f"busiest window {busiest} calls <= limit {args.per_minute}", busiest <= args.per_minute),
            (f"peak memory {max(peaks):.1f} MiB < {MEMORY_LIMIT_MB:.0f} MB", max(peaks) < MEMORY_LIMIT_MB),
            (f"sent twice: {len(twice)} owner(s) {twice[:5]}", not twice),
            (f"skipped silently: {len(missing - unknown)} (held as unknown for a person: {len(unknown)})",
             not (missing - unknown)),
        ]
        for label, ok in checks:
            print(f"{'PASS' if ok else 'FAIL'}  {label}")
        return 0 if all(ok for _, ok in checks) else 1
    finally:
        for p in senders + procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM) if p in senders else p.terminate()
                    p.wait(10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
