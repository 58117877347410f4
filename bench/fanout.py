"""Fan-out benchmark: one campaign to many owners against the fake platform.

    .venv/bin/python bench/fanout.py [--recipients 5000] [--per-minute 2000] [--window-scale 0.1]

Starts its own redis-server and fake platform, a fresh SQLite database, N
owners, then runs the campaign in this process (as a "bulk" worker would) and
prints messages per second against the configured per-app limit, the share
of the limit reached, the worst count seen by the platform in any window, and
peak memory. The limit's "minute" can be shrunk (--window-scale) so a run
covers many windows in a few seconds.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int) -> None:
    import socket

    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing on port {port}")


def max_in_window(times: list[float], window: float) -> int:
    """The most calls the platform saw in any `window` seconds."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipients", type=int, default=3000)
    ap.add_argument("--per-minute", type=int, default=600, help="per-app limit per (scaled) minute")
    ap.add_argument("--window-scale", type=float, default=0.1, help="the limit's minute lasts 60*scale seconds")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="guanjia-bench-"))
    rport, fport = _free_port(), _free_port()
    procs = [subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(rport), "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen([sys.executable, "-m", "bot", "dev", "fake-platform", "--port", str(fport)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait(rport), _wait(fport)
        base = f"http://127.0.0.1:{fport}"
        os.environ.update({
            "DATABASE_URL": f"sqlite:///{work / 'bench.db'}", "REDIS_URL": f"redis://127.0.0.1:{rport}/0",
            "GUANJIA_VAR_DIR": str(work), "WECHAT_APPID": "wxbench000000001", "WECHAT_SECRET": "s",
            "WECHAT_TOKEN": "t", "WECHAT_API_BASE": base, "WECOM_API_BASE": base,
            "GUANJIA_WECOM_APP_PER_MINUTE": str(args.per_minute), "GUANJIA_SCHED_TIME_SCALE": str(args.window_scale),
            "GUANJIA_RATE_INLINE_WAIT_S": "5",
        })
        from sqlalchemy import insert

        from store.migrate import upgrade

        upgrade(os.environ["DATABASE_URL"])
        from scheduler.campaigns import create_campaign, run_chunk
        from store.db import session_scope
        from store.models import Owner

        with session_scope() as s:
            s.execute(insert(Owner), [{"name": f"业主{i}", "openid": f"o_bench_{i}", "tier": "普通",
                                       "created_at": __import__("bot.clock", fromlist=["now"]).now()}
                                      for i in range(args.recipients)])
            cid = create_campaign(s, kind="announcement", title="bench", text="小区通知：本周六上午消防演练。",
                                  target={"everyone": True}, emergency=True, created_by="bench").id
        t0 = time.monotonic()
        while True:
            res = run_chunk(cid, max_seconds=60)
            if not res.get("more"):
                break
        elapsed = time.monotonic() - t0
        import requests

        sent = requests.get(base + "/_sent", timeout=30).json()
        times = sorted(e["time"] for e in sent)
        window = 60 * args.window_scale
        rate = len(sent) / elapsed
        limit_rate = args.per_minute / window
        # Steady state: after the first window's burst the pace is the limit itself.
        print(f"recipients           {args.recipients}")
        print(f"delivered            {len(sent)} ({res['deliveries']})")
        print(f"elapsed              {elapsed:.2f} s")
        print(f"configured limit     {args.per_minute} per {window:g} s = {limit_rate:.1f} msg/s")
        print(f"throughput           {rate:.1f} msg/s = {100 * rate / limit_rate:.1f}% of the limit")
        print(f"max in any window    {max_in_window(times, window)} (limit {args.per_minute})")
        print(f"peak memory          {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB RSS "
              f"(this process: planner + sender threads)")
    finally:
        for p in procs:
            p.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
