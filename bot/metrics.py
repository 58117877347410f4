"""Prometheus metrics. Counters live per process (multiprocess mode when
PROMETHEUS_MULTIPROC_DIR is set, as under gunicorn); gauges of shared state
(queue depth, outbox by state) are read at scrape time."""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

REQUEST_LATENCY = Histogram("guanjia_request_seconds", "Webhook request latency", ["endpoint"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
REFUSALS = Counter("guanjia_refusals_total", "Refused webhook requests", ["endpoint", "reason"])
DUPLICATES = Counter("guanjia_duplicates_total", "Platform retries recognized and dropped", ["channel", "layer"])
ACCEPTED = Counter("guanjia_messages_accepted_total", "Messages written to the inbox", ["channel"])
REPLIES = Counter("guanjia_replies_total", "Replies by how they reached the sender", ["mode"])
OUTBOUND = Counter("guanjia_outbound_total", "Outbound send attempts by result", ["channel", "result"])


def render() -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    shared = CollectorRegistry()
    queue_depth = Gauge("guanjia_queue_depth", "Jobs waiting per rq queue", ["queue"], registry=shared)
    outbox = Gauge("guanjia_outbox_messages", "Outbox rows by state", ["state"], registry=shared)
    inbox = Gauge("guanjia_inbox_messages", "Inbox rows by state", ["state"], registry=shared)
    try:
        from bot.queues import QUEUE_NAMES, get_queue

        from bot.inbox import lane_length

        for name in QUEUE_NAMES:
            # inbound messages wait on the lane (bot/inbox.py), other work in rq
            queue_depth.labels(name).set(get_queue(name).count + (lane_length() if name == "inbound" else 0))
    except Exception:
        pass
    try:
        from sqlalchemy import func, select

        from store.db import session_scope
        from store.models import InboxMessage, OutboxMessage

        with session_scope() as s:
            for state, n in s.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)):
                outbox.labels(state).set(n)
            for state, n in s.execute(select(InboxMessage.state, func.count()).group_by(InboxMessage.state)):
                inbox.labels(state).set(n)
    except Exception:
        pass
    return generate_latest(registry) + generate_latest(shared)
