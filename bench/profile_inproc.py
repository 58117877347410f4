"""Our /wechat/mp path in one process, without gunicorn: N sequential safe-mode texts (each
from its own owner) through the WSGI app, with its own redis-server and a temp SQLite; prints
CPU and wall time per message (CPU counts every thread of the process: the group-commit
writer too).

    .venv/bin/python bench/profile_inproc.py [--messages N]          # the figures
    .venv/bin/python bench/profile_inproc.py --cprofile              # + cProfile (inflates ~1.7x)
    .venv/bin/py-spy record --gil --rate 1000 --format raw -o /tmp/gil.txt -- \\
        .venv/bin/python bench/profile_inproc.py --messages 4000      # shares without that cost

Sequential requests never share a group-commit batch, so this is the path's cost per message
at its worst; bench/ingress.py measures it under load, behind gunicorn.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
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

WARM_MESSAGES = 200  # first requests: caches, the pool, the writer thread


def _environ(tmp: Path, redis_port: int) -> None:
    os.environ.update(P.channel_env(f"http://127.0.0.1:{free_port()}"))
    os.environ.update({"DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}", "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                       "GUANJIA_VAR_DIR": str(tmp / "var"), "GUANJIA_LOG_LEVEL": "WARNING",
                       "GUANJIA_PASSIVE_FROM_TIMESTAMP": "0", "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom")})
    (tmp / "prom").mkdir()
    if (ROOT / "var" / "cache").is_dir():  # fitted models: no minute of training here
        shutil.copytree(ROOT / "var" / "cache", tmp / "var" / "cache")


def _app():
    from bot import worker
    from bot.web import create_app

    app = create_app()
    worker.warm_in_background()
    while not worker.web_ready():  # until then texts would go to the (absent) workers
        time.sleep(0.2)
    return app


def _requests(n: int) -> list[dict]:
    from werkzeug.test import EnvironBuilder

    out = []
    for i in range(n):
        q, body = P.mp_text_request(f"o_inproc_{i}", "你好", 10**9 + i, mode="safe")
        out.append(EnvironBuilder(path="/wechat/mp", method="POST", query_string=urlencode(q), data=body,
                                  content_type="text/xml").get_environ())
    return out


def _call(app, environ: dict) -> bytes:
    return b"".join(app(environ, lambda status, headers, exc_info=None: None))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--cprofile", action="store_true", help="print cProfile's top functions too")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="guanjia-inproc-"))
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL)
    try:
        wait_port(redis_port)
        _environ(tmp, redis_port)
        subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=ROOT, check=True, capture_output=True)
        app = _app()
        envs = _requests(args.messages + WARM_MESSAGES)
        for e in envs[:WARM_MESSAGES]:
            reply = _call(app, e)
        assert reply.startswith(b"<xml>"), reply[:200]  # answered passively, as deployed
        prof = cProfile.Profile() if args.cprofile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        for e in envs[WARM_MESSAGES:]:
            _call(app, e)
        if prof:
            prof.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        n = args.messages
        print(f"{n} messages, one at a time: CPU {cpu / n * 1000:.2f} ms per message, wall {wall / n * 1000:.2f} ms"
              + (" (cProfile on: inflated)" if prof else ""))
        if prof:
            for key in ("cumulative", "tottime"):
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats(key).print_stats(40)
                print(out.getvalue())
    finally:
        redis.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
