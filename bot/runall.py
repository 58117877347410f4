"""`guanjia run`: web, worker and scheduler as child processes of one command."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from ground.config import get_settings


def banner(port: int, demo_password: str | None = None, host: str = "127.0.0.1") -> str:
    """What `guanjia run` prints at start: where the console is, and the demo sign-in once."""
    base = f"http://{host}:{port}"
    lines = ["guanjia running (Ctrl-C stops all)",
             f"  console:  {base}/console/",
             f"  webhooks: {base}/wechat/mp  {base}/wecom/app",
             f"  health:   {base}/healthz"]
    try:
        from bot.outbound.sender import unconfigured_channels

        missing = unconfigured_channels()
    except Exception:
        missing = []
    if missing:
        lines.append(f"  not configured: {'; '.join(missing)} - messages to them are recorded as not configured, not sent")
    if demo_password:
        from bot.demo import DEMO_MANAGER

        lines.append(f"  sign in:  user {DEMO_MANAGER}, password {demo_password}  (demo manager; shown only this once)")
    return "\n".join(lines)


def _demo_password() -> str | None:
    try:
        from bot.demo import ensure_demo_manager

        return ensure_demo_manager()
    except Exception as exc:  # a demo convenience must never stop the product from starting
        print(f"demo manager not created: {exc}", file=sys.stderr)
        return None


def run_all(port: int) -> None:
    from store.migrate import upgrade

    upgrade(get_settings().database_url)
    base = [sys.executable, "-m", "bot"]
    procs = {
        "web": subprocess.Popen(base + ["serve", "--port", str(port)]),
        "worker": subprocess.Popen(base + ["worker"]),
        "scheduler": subprocess.Popen(base + ["scheduler"]),
    }
    print(banner(port, _demo_password()), flush=True)

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
