"""/healthz and /metrics.

/healthz answers 200 only when the database and Redis answer AND the scheduler
and the workers are alive: their loops beat (bot/heartbeat.py) and the inbound
queue moves. A stale one makes it 503, named under its key, with the figures in
"detail". A scheduler or worker that has never beaten in this Redis (not
deployed, or Redis restarted empty) is reported as "missing" without failing the
check; one that died leaves a stale beat and fails it.
"""
from __future__ import annotations

import os
import time

from flask import Blueprint, Response, jsonify
from sqlalchemy import func, select, text

from bot import heartbeat, inbox, metrics
from bot.queues import get_redis
from ground.clock import now as clock_now
from store.db import get_engine
from store.models import InboxMessage

bp = Blueprint("health", __name__)

# Stale after this long without a clean round; overridable (tests shrink them).
SCHEDULER_STALE_S = 60.0
WORKER_STALE_S = 30.0
QUEUE_STALE_S = 60.0  # the oldest message waiting for a worker


def _limit(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _scheduler_status() -> tuple[str, dict]:
    beats = heartbeat.read("scheduler")
    if not beats:
        return "missing", {}
    token, rec = max(beats.items(), key=lambda kv: kv[1].get("beat") or 0)
    now = time.time()
    detail = {"leader": token, "last_heartbeat_s": round(now - float(rec["beat"]), 1),
              "last_ok_s": round(now - float(rec["ok"]), 1) if rec.get("ok") else None,
              "error": rec.get("error")}
    stale = _limit("GUANJIA_HEALTH_SCHEDULER_STALE_S", SCHEDULER_STALE_S)
    ok = rec.get("ok") is not None and now - float(rec["ok"]) <= stale
    return ("ok" if ok else "stale"), detail


def _workers_status() -> tuple[str, dict]:
    beats = heartbeat.read("workers")
    now = time.time()
    stale = _limit("GUANJIA_HEALTH_WORKER_STALE_S", WORKER_STALE_S)
    alive = [m for m, r in beats.items() if r.get("ok") and now - float(r["ok"]) <= stale]
    last = max((float(r["beat"]) for r in beats.values()), default=None)
    with get_engine().connect() as conn:  # uses ix_inbox_state_created
        oldest = conn.execute(select(func.min(InboxMessage.created_at)).where(
            InboxMessage.state.in_(("received", "queued", "stalled")))).scalar()
    age = max(0.0, (clock_now() - oldest).total_seconds()) if oldest is not None else 0.0
    detail = {"alive": len(alive), "last_heartbeat_s": round(now - last, 1) if last else None,
              "queue_age_s": round(age, 1), "lane": inbox.lane_length()}
    if not beats:
        return "missing", detail
    if not alive:
        return "stale", detail
    if age > _limit("GUANJIA_HEALTH_QUEUE_STALE_S", QUEUE_STALE_S):
        return "stale", detail
    return "ok", detail


@bp.get("/healthz")
def healthz():
    status: dict = {}
    try:
        from store.db import get_engine

        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        status["db"] = "ok"
    except Exception as exc:
        status["db"] = f"down: {type(exc).__name__}"
    try:
        get_redis().ping()
        status["redis"] = "ok"
    except Exception as exc:
        status["redis"] = f"down: {type(exc).__name__}"
    detail = {}
    if status["redis"] == "ok":
        for name, fn in (("scheduler", _scheduler_status), ("workers", _workers_status)):
            try:
                status[name], detail[name] = fn()
            except Exception as exc:
                status[name], detail[name] = f"unknown: {type(exc).__name__}", {}
    failing = [k for k, v in status.items() if v not in ("ok", "missing")]
    body = {**status, "detail": detail} if detail else status
    return jsonify(body), (503 if failing else 200)


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    return Response(metrics.render(), mimetype="text/plain; version=0.0.4")
