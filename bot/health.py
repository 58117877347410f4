"""/healthz and /metrics."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from bot import metrics

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    status = {}
    try:
        from store.db import get_engine

        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        status["db"] = "ok"
    except Exception as exc:
        status["db"] = f"down: {type(exc).__name__}"
    try:
        from bot.queues import get_redis

        get_redis().ping()
        status["redis"] = "ok"
    except Exception as exc:
        status["redis"] = f"down: {type(exc).__name__}"
    code = 200 if all(v == "ok" for v in status.values()) else 503
    return jsonify(status), code


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    return Response(metrics.render(), mimetype="text/plain; version=0.0.4")
