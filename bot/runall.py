"""`guanjia run`: web, worker and scheduler as child processes of one command."""
from __future__ import annotations

import signal
import subprocess
import sys
import time


def run_all(port: int) -> None:
    from bot.config import get_settings
    from store.migrate import upgrade

    upgrade(get_settings().database_url)
    base = [sys.executable, "-m", "bot"]
    procs = {
        "web": subprocess.Popen(base + ["serve", "--port", str(port)]),
        "worker": subprocess.Popen(base + ["worker"]),
        "scheduler": subprocess.Popen(base + ["scheduler"]),
    }
    print(f"guanjia running: http://127.0.0.1:{port}/healthz (Ctrl-C stops all)", flush=True)

    def stop(*_):
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        for name, p in procs.items():
            if p.poll() is not None:
                print(f"{name} exited with {p.returncode}; stopping the rest", file=sys.stderr)
                stop()
        time.sleep(1)
