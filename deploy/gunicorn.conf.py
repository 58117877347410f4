"""gunicorn settings for `guanjia serve` (and the systemd unit / compose file).

gthread workers: a webhook may hold its thread while it waits (up to
GUANJIA_PASSIVE_BUDGET_S, default 3 s) for a worker's passive reply, so each
process needs many threads, not many processes. Settings come from the same
environment as the app; a malformed one stops the start with a message naming it.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ground.config import ConfigError, get_settings  # noqa: E402

try:
    _settings = get_settings()
except ConfigError as exc:  # same message and exit code as the CLI
    print(f"configuration error: {exc}", file=sys.stderr)
    sys.exit(2)

wsgi_app = "bot.web:create_app()"
bind = os.environ.get("GUANJIA_BIND", "127.0.0.1:8000")  # `guanjia serve -b/--port` overrides
worker_class = "gthread"
workers = _settings.web_workers
threads = _settings.web_threads
# Above the passive budget plus a slow database, below the platforms' 5 s retry: a stuck
# request is killed rather than left to pile up behind WeChat's retries.
timeout = 30
graceful_timeout = 20
keepalive = 5
# Load the app once in the master: start-up errors show before any worker forks, and
# workers share the imported code. Connections (DB, Redis) are opened lazily per process.
preload_app = True
# Recycle workers now and then so a slow leak never becomes an outage (0: never; the
# benchmark turns it off so a restart mid-run does not count as a failure).
max_requests = int(os.environ.get("GUANJIA_MAX_REQUESTS", "20000"))
max_requests_jitter = 2000
forwarded_allow_ips = os.environ.get("GUANJIA_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-" if os.environ.get("GUANJIA_ACCESS_LOG", "0") == "1" else None
# Access lines with openids and search terms masked (bot/logs.py).
logger_class = "bot.logs.MaskingGunicornLogger"
errorlog = "-"
loglevel = os.environ.get("GUANJIA_LOG_LEVEL", "info").lower()
proc_name = "guanjia-web"
# gunicorn's control socket defaults to one path per user, so two instances on a machine
# (tests, a benchmark, a second site) would fight over it; off unless a path is given.
control_socket_disable = not os.environ.get("GUANJIA_GUNICORN_CONTROL_SOCKET")
if not control_socket_disable:
    control_socket = os.environ["GUANJIA_GUNICORN_CONTROL_SOCKET"]

# Prometheus counters from every worker process, summed at /metrics. The directory is
# emptied at each start (stale files from dead processes would be counted forever), before
# the preloaded app imports prometheus_client.
_prom_dir = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_settings.var_dir / "prometheus-web")))
shutil.rmtree(_prom_dir, ignore_errors=True)
_prom_dir.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)



def post_fork(server, worker) -> None:
    """Plain texts are handled in the web process (GUANJIA_HANDLE_IN_WEB, bot/webhooks.py):
    each worker loads the capabilities and models in a thread of its own; until they are
    loaded its messages go to `guanjia worker` as before, so the port opens at once."""
    app = getattr(server.app, "app_uri", None) or wsgi_app
    if _settings.handle_in_web and app.startswith("bot.web:"):  # not the benchmark's other servers
        from bot.worker import warm_in_background

        warm_in_background()
