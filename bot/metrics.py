"""Prometheus metrics. Counters live per process (multiprocess mode when
PROMETHEUS_MULTIPROC_DIR is set, as under gunicorn); gauges of shared state
(queue depth, outbox by state) are read at scrape time."""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess

from bot.queues import get_queue, get_redis
from ground import keys

REQUEST_LATENCY = Histogram("guanjia_request_seconds", "Webhook request latency", ["endpoint"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
REFUSALS = Counter("guanjia_refusals_total", "Refused webhook requests", ["endpoint", "reason"])
DUPLICATES = Counter("guanjia_duplicates_total", "Platform retries recognized and dropped", ["channel", "layer"])
ACCEPTED = Counter("guanjia_messages_accepted_total", "Messages written to the inbox", ["channel"])
REPLIES = Counter("guanjia_replies_total", "Replies by how they reached the sender", ["mode"])
OUTBOUND = Counter("guanjia_outbound_total", "Outbound send attempts by result", ["channel", "result"])


# States always reported (0 when none), so a count that falls to nothing reads 0, not absent.
INBOX_STATES = ("received", "queued", "handling", "done", "failed", "stalled")
OUTBOX_STATES = ("queued", "sent", "failed", "dead", "unknown")


class SharedStateCollector:
    """Queue depth and inbox/outbox rows by state, computed once per scrape.

    Not `Gauge` objects: in multiprocess mode every Gauge writes a file per
    process (PROMETHEUS_MULTIPROC_DIR), so gauges re-created per scrape showed
    one stale copy per process that ever answered a scrape (the same state
    three times, still 1 after the real count fell to 0). These numbers are
    shared state, the same whichever process is asked: read them now, report
    them once.
    """

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        depth = GaugeMetricFamily("guanjia_queue_depth", "Jobs waiting per rq queue", labels=["queue"])
        try:
            for name in keys.QUEUE_NAMES:
                # inbound messages wait on the lane (bot/inbox.py), other work in rq
                lane = int(get_redis().llen(keys.INBOUND_LANE)) if name == "inbound" else 0
                depth.add_metric([name], get_queue(name).count + lane)
        except Exception:  # Redis down: no depth rather than a failed scrape (healthz says why)
            pass
        yield depth
        outbox = GaugeMetricFamily("guanjia_outbox_messages", "Outbox rows by state", labels=["state"])
        inbox = GaugeMetricFamily("guanjia_inbox_messages", "Inbox rows by state", labels=["state"])
        try:
            from sqlalchemy import func, select

            from store.db import session_scope
            from store.models import InboxMessage, OutboxMessage

            with session_scope() as s:
                for family, model, known in ((outbox, OutboxMessage, OUTBOX_STATES),
                                             (inbox, InboxMessage, INBOX_STATES)):
                    counts = dict.fromkeys(known, 0)
                    counts.update(dict(s.execute(select(model.state, func.count()).group_by(model.state)).all()))
                    for state, n in sorted(counts.items()):
                        family.add_metric([state], n)
        except Exception:
            pass
        yield outbox
        yield inbox


def render() -> bytes:
    """Counters and histograms of every process (multiprocess mode) plus the shared
    state, read once per scrape."""
    shared = CollectorRegistry()
    shared.register(SharedStateCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    return generate_latest(registry) + generate_latest(shared)


# --- who may scrape ---------------------------------------------------------------------------

def scrape_allowed(address: str, authorization: str | None) -> bool:
    """GUANJIA_METRICS_TOKEN (a bearer token, from anywhere) or an address in
    GUANJIA_METRICS_ALLOW (addresses or networks, default loopback only)."""
    import hmac
    import ipaddress

    token = os.environ.get("GUANJIA_METRICS_TOKEN") or ""
    if token and authorization and authorization.startswith("Bearer "):
        if hmac.compare_digest(authorization[len("Bearer "):].strip().encode(), token.encode()):
            return True
    allow = os.environ.get("GUANJIA_METRICS_ALLOW", "127.0.0.1,::1")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in (e.strip() for e in allow.split(",")):
        if not entry:
            continue
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a malformed entry allows nobody
    return False
