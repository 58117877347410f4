"""What every response of the web app gets, whatever blueprint answers it.

- Path integers are bounded (`<int:...>` larger than a database integer would
  raise OverflowError in the driver: a 500); an out-of-range id is a 404.
- Unknown `/api/...` routes answer JSON, like the API's own errors.
- No page may be framed by another site (clickjacking the console's buttons):
  `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`.
"""
from __future__ import annotations

import logging
import os

from flask import Flask, jsonify, request
from werkzeug.routing import IntegerConverter

log = logging.getLogger(__name__)

INT_MAX = 2**63 - 1


class BoundedInt(IntegerConverter):
    """Flask's int converter capped at a signed 64-bit value (and 20 digits)."""

    regex = r"\d{1,19}"

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 (werkzeug's name)
        kwargs.setdefault("max", INT_MAX)
        super().__init__(map, *args, **kwargs)


def install_converters(app: Flask) -> None:
    """Before the blueprints register: their rules are compiled with these."""
    app.url_map.converters["int"] = BoundedInt


def trusted_proxies() -> set[str]:
    """GUANJIA_FORWARDED_ALLOW_IPS (gunicorn's setting too): proxies whose X-Real-IP /
    X-Forwarded-For we believe. Default: nginx on this machine."""
    raw = os.environ.get("GUANJIA_FORWARDED_ALLOW_IPS", "127.0.0.1")
    return {p.strip() for p in raw.split(",") if p.strip()}


def client_address() -> str:
    """The caller's address: behind the trusted proxy, the one it reports (nginx sets
    X-Real-IP to the connecting address); otherwise the connection's own."""
    remote = request.remote_addr or "-"
    proxies = trusted_proxies()
    if remote in proxies or "*" in proxies:
        real = (request.headers.get("X-Real-IP") or "").strip()
        if not real:
            forwarded = [p.strip() for p in (request.headers.get("X-Forwarded-For") or "").split(",") if p.strip()]
            real = forwarded[-1] if forwarded else ""
        if real and len(real) <= 64:
            return real
    return remote


def _is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def install(app: Flask) -> None:
    # The console's cookie: never in clear when served over https (GUANJIA_PUBLIC_URL),
    # and living no longer than its server-side session (bot/console/sessions.py), not
    # Flask's default 31 days. Set here, per app (the blueprint's record_once runs once).
    from bot.console.sessions import lifetime  # here: bot/console's views import this module

    app.config["SESSION_COOKIE_SECURE"] = (os.environ.get("GUANJIA_PUBLIC_URL") or "").lower().startswith("https://")
    app.config["PERMANENT_SESSION_LIFETIME"] = lifetime()
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"

    @app.after_request
    def _frame_headers(resp):
        resp.headers.setdefault("X-Frame-Options", "DENY")
        csp = resp.headers.get("Content-Security-Policy")
        if not csp:
            resp.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        elif "frame-ancestors" not in csp:
            resp.headers["Content-Security-Policy"] = csp.rstrip("; ") + "; frame-ancestors 'none'"
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        return resp

    @app.before_request
    def _metrics_gate():
        # /metrics is not for the world (queue depths, message counts): the allowed
        # addresses or the bearer token of bot/metrics.py::scrape_allowed.
        if request.path == "/metrics":
            from bot.metrics import scrape_allowed

            if not scrape_allowed(client_address(), request.headers.get("Authorization")):
                log.warning("refused /metrics from %s", client_address())
                return "forbidden", 403
        return None

    @app.errorhandler(404)
    def _not_found(exc):
        if _is_api():
            return jsonify({"error": "not found"}), 404
        return exc

    @app.errorhandler(405)
    def _not_allowed(exc):
        if _is_api():
            return jsonify({"error": "method not allowed"}), 405
        return exc

    @app.errorhandler(OverflowError)
    def _overflow(exc):
        # A number too large for the database that slipped past validation: the
        # caller's input, not our failure.
        log.warning("refused %s %s: number out of range", request.method, request.path)
        if _is_api():
            return jsonify({"error": "a number is out of range"}), 400
        return "数字超出范围", 400

