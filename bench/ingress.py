"""Ingress benchmark: /wechat/mp (safe mode, unique messages, passive reply on)
next to a bare Flask endpoint answering `success`, both under deploy/gunicorn.conf.py,
in the same run.

    .venv/bin/python bench/ingress.py [--seconds 6] [--connections 32] [--workers 2]

Also serves bench/floor.py the same way: the least a store-before-answer ingress can do
(signatures, decryption, Redis dedup, one raw INSERT + COMMIT, one LPUSH; no handling, no
reply), to show what part of the gap to the bare endpoint any implementation must keep.

Starts its own redis-server, a temp SQLite database, `guanjia worker` processes and
two gunicorns; loads each with a small asyncio HTTP/1.1 keep-alive client (closed
loop, maximum throughput), then at a fixed 200 requests/s (open loop: latency is
counted from the moment a request was due, so a stall is not hidden).
Targets (issue 2): ours >= 0.5 x bare throughput; p99 < 50 ms at 200 req/s on 2 cores.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import platform as P  # noqa: E402  (request builders: what WeChat sends)
from tests.conftest import free_port, wait_port  # noqa: E402


# --- a tiny HTTP/1.1 client ------------------------------------------------------------

async def _request(reader, writer, raw: bytes) -> bytes:
    writer.write(raw)
    status = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length) if length else b""
    if not status.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{status!r} {body[:200]!r}")
    return body


def build_requests(port: int, n: int, offset: int) -> list[bytes]:
    out = []
    for i in range(n):
        q, body = P.mp_text_request(f"o_bench{i % 500}", "你好", offset + i, mode="safe")
        out.append((f"POST /wechat/mp?{urlencode(q)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
    return out


async def closed_loop(port: int, requests: list[bytes], connections: int, seconds: float) -> dict:
    """As fast as the server answers, `connections` requests in flight."""
    latencies: list[float] = []
    errors = 0
    it = iter(requests)
    deadline = time.perf_counter() + seconds

    async def conn() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for raw in it:
            if time.perf_counter() > deadline:
                break
            t = time.perf_counter()
            try:
                await _request(reader, writer, raw)
                latencies.append(time.perf_counter() - t)
            except Exception:
                errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(connections)))
    return _summary(latencies, errors, time.perf_counter() - started)


async def open_loop(port: int, requests: list[bytes], rate: float, seconds: float) -> dict:
    """One request every 1/rate s whatever happens; latency from when it was due."""
    n = int(rate * seconds)
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()

    async def one(i: int) -> None:
        nonlocal errors
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        reader, writer = await pool.get()
        try:
            await _request(reader, writer, requests[i])
            latencies.append(time.perf_counter() - due)
        except Exception:
            errors += 1
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pool.put_nowait((reader, writer))

    await asyncio.gather(*(one(i) for i in range(n)))
    return _summary(latencies, errors, time.perf_counter() - start)


def _summary(lat: list[float], errors: int, elapsed: float) -> dict:
    lat = sorted(lat)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")  # noqa: E731
    return {"n": len(lat), "errors": errors, "rps": len(lat) / elapsed, "p50_ms": pick(0.50),
            "p99_ms": pick(0.99), "mean_ms": statistics.fmean(lat) * 1000 if lat else float("nan")}


# --- the processes -----------------------------------------------------------------------

class Stack:
    def __init__(self, workers: int, rq_workers: int, database_url: str | None = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="guanjia-bench-"))
        self.procs: list[subprocess.Popen] = []
        self.names: list[str] = []
        self.redis_port, self.app_port, self.bare_port = free_port(), free_port(), free_port()
        self.nowait_port, self.fake_port, self.floor_port = free_port(), free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "WECOM_", "GUANJIA_"))}
        # Replies that miss the budget are pushed: to the fake platform, so they cost what a
        # real send costs and do not pile up as retries.
        self.env |= P.channel_env(f"http://127.0.0.1:{self.fake_port}") | {
            "DATABASE_URL": database_url or f"sqlite:///{self.tmp / 'bench.db'}", "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "GUANJIA_VAR_DIR": str(self.tmp / "var"), "GUANJIA_WEB_WORKERS": str(workers),
            "GUANJIA_LOG_LEVEL": "WARNING", "GUANJIA_MAX_REQUESTS": "0", "PYTHONPATH": str(ROOT)}
        self.rq_workers = rq_workers

    def pids(self, *logs: str) -> list[int]:
        return [p.pid for p, name in zip(self.procs, self.names) if name in logs]

    def _spawn(self, args: list[str], env: dict | None = None, log: str = "x") -> subprocess.Popen:
        out = open(self.tmp / f"{log}.log", "ab")
        p = subprocess.Popen(args, cwd=ROOT, env=env or self.env, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append(p)
        self.names.append(log)
        return p

    def start(self) -> None:
        py = sys.executable
        self._spawn(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", str(self.tmp)], log="redis")
        wait_port(self.redis_port)
        self._spawn([py, "-m", "bot", "dev", "fake-platform", "--port", str(self.fake_port)], log="fake")
        subprocess.run([py, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=self.env, check=True,
                       capture_output=True)
        for i in range(self.rq_workers):
            self._spawn([py, "-m", "bot", "worker", "--queues", "inbound,outbound"], log=f"worker{i}")
        self._spawn([py, "-m", "bot", "serve", "--port", str(self.app_port)], log="app")
        # The same app answering `success` at once (budget 0): the ingress path alone, the
        # reply pushed later. Shows what the passive wait itself costs.
        self._spawn([py, "-m", "bot", "serve", "--port", str(self.nowait_port)],
                    env=self.env | {"GUANJIA_PASSIVE_BUDGET_S": "0",
                                    "PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "prom-nowait")}, log="nowait")
        conf = str(ROOT / "deploy" / "gunicorn.conf.py")
        self._spawn([py, "-m", "gunicorn", "-c", conf, "-b", f"127.0.0.1:{self.bare_port}", "bench.bare:create_app()"],
                    env=self.env | {"PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "prom-bare")}, log="bare")
        # The floor (bench/floor.py): the least work a store-before-answer ingress can do.
        self._spawn([py, "-m", "gunicorn", "-c", conf, "-b", f"127.0.0.1:{self.floor_port}", "bench.floor:create_app()"],
                    env=self.env | {"PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "prom-floor"),
                                    "GUANJIA_FLOOR_DB": str(self.tmp / "floor.db")}, log="floor")
        wait_port(self.app_port, 30)
        wait_port(self.bare_port, 30)
        wait_port(self.floor_port, 30)
        wait_port(self.nowait_port, 30)
        time.sleep(1.5)  # the rq workers warm up

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and their descendants (Linux /proc), in seconds.
    CPU per request does not depend on what else the machine is doing; wall-clock figures do."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in {d for p in pids for d in _descendants(p)}:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def _line(name: str, r: dict) -> str:
    return (f"{name:<22} {r['rps']:8.0f} req/s   p50 {r['p50_ms']:6.1f} ms   p99 {r['p99_ms']:6.1f} ms"
            f"   n={r['n']} errors={r['errors']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn processes (GUANJIA_WEB_WORKERS default)")
    ap.add_argument("--rq-workers", type=int, default=2,
                    help="guanjia worker processes (2: as deploy/ runs them, systemd worker@1 and @2, compose replicas 2)")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--database-url", default=None,
                    help="a throw-away PostgreSQL (emptied and migrated), e.g. from scripts/pg-local.sh; "
                         "default: a temp SQLite file (the embedded default)")
    args = ap.parse_args()
    if args.database_url:
        from tests.pg import fresh_postgres

        fresh_postgres(args.database_url)
    if shutil.which("redis-server") is None:
        print("redis-server is needed: apt-get install redis-server", file=sys.stderr)
        return 2

    load_before = os.getloadavg()[0]
    stack = Stack(args.workers, args.rq_workers, args.database_url)
    try:
        stack.start()
        n_max = int(args.seconds * 8000)  # more than the bare endpoint can answer in that time
        print(f"building {n_max * 2 + int(args.rate * args.seconds * 2)} encrypted requests...", flush=True)
        ours_reqs = build_requests(stack.app_port, n_max, 10_000_000)
        bare_reqs = build_requests(stack.bare_port, n_max, 20_000_000)
        warm = build_requests(stack.app_port, 200, 30_000_000)
        asyncio.run(closed_loop(stack.app_port, warm, 8, 2))
        asyncio.run(closed_loop(stack.bare_port, build_requests(stack.bare_port, 200, 0), 8, 2))
        asyncio.run(closed_loop(stack.floor_port, build_requests(stack.floor_port, 200, 1_000), 8, 2))

        ours_pids = stack.pids("app", "redis", *[f"worker{i}" for i in range(args.rq_workers)])
        c0 = cpu_seconds(stack.pids("bare"))
        bare = asyncio.run(closed_loop(stack.bare_port, bare_reqs, args.connections, args.seconds))
        bare["cpu_ms"] = (cpu_seconds(stack.pids("bare")) - c0) / max(1, bare["n"]) * 1000
        c0 = cpu_seconds(stack.pids("floor", "redis"))
        floor = asyncio.run(closed_loop(stack.floor_port, build_requests(stack.floor_port, n_max, 70_000_000),
                                        args.connections, args.seconds))
        floor["cpu_ms"] = (cpu_seconds(stack.pids("floor", "redis")) - c0) / max(1, floor["n"]) * 1000
        c0 = cpu_seconds(ours_pids)
        ours = asyncio.run(closed_loop(stack.app_port, ours_reqs, args.connections, args.seconds))
        time.sleep(0.5)
        ours["cpu_ms"] = (cpu_seconds(ours_pids) - c0) / max(1, ours["n"]) * 1000
        n_rate = int(args.rate * args.seconds * 2)
        bare_rate = asyncio.run(open_loop(stack.bare_port, build_requests(stack.bare_port, n_rate, 40_000_000),
                                          args.rate, args.seconds * 2))
        ours_rate = asyncio.run(open_loop(stack.app_port, build_requests(stack.app_port, n_rate, 50_000_000),
                                          args.rate, args.seconds * 2))
        # Last: its backlog of pushed replies keeps the workers busy for a while afterwards.
        nowait = asyncio.run(closed_loop(stack.nowait_port, build_requests(stack.nowait_port, n_max, 60_000_000),
                                         args.connections, args.seconds))
    finally:
        stack.stop()

    ratio = ours["rps"] / bare["rps"]
    db = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\n{os.cpu_count()} cores (load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end); {db}; gunicorn gthread x{args.workers}, {args.rq_workers} guanjia worker(s), "
          f"{args.connections} connections, {args.seconds:.0f} s per run; /wechat/mp safe mode, passive reply on")
    print("max throughput (closed loop)")
    print("  " + _line("bare Flask 'success'", bare))
    print("  " + _line("floor (bench/floor.py)", floor) + f"   ratio {floor['rps'] / bare['rps']:.2f}")
    print("  " + _line("guanjia /wechat/mp", ours))
    print("  " + _line("  same, no passive wait", nowait) + f"   ratio {nowait['rps'] / bare['rps']:.2f}")
    print(f"  ratio ours/bare: {ratio:.2f}  (target >= 0.50)")
    cores = os.cpu_count() or 1
    print(f"CPU per request (server side, independent of other load): bare {bare['cpu_ms']:.2f} ms, "
          f"floor {floor['cpu_ms']:.2f} ms (ingress only: web + redis), "
          f"ours {ours['cpu_ms']:.2f} ms (web + worker + redis) -> on {cores} idle cores at most "
          f"~{cores * 1000 / bare['cpu_ms']:.0f} vs ~{cores * 1000 / ours['cpu_ms']:.0f} req/s, "
          f"ratio <= {bare['cpu_ms'] / ours['cpu_ms']:.2f}")
    print(f"fixed rate {args.rate:.0f} req/s (open loop)")
    print("  " + _line("bare Flask 'success'", bare_rate))
    print("  " + _line("guanjia /wechat/mp", ours_rate))
    errors = ours["errors"] + ours_rate["errors"]
    checks = [(f"ratio {ratio:.2f} >= 0.50", ratio >= 0.5),
              (f"p99 at {args.rate:.0f} req/s {ours_rate['p99_ms']:.1f} ms < 50 ms", ours_rate["p99_ms"] < 50),
              (f"errors {errors} == 0", errors == 0)]
    for label, ok in checks:  # one verdict per target, so a miss is not blamed on the others
        print(f"target {'met    ' if ok else 'NOT met'}: {label}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
