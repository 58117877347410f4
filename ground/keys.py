"""Every Redis key and rq name the project uses, built in one place (as rq keeps its keys.py).

A key's spelling is a contract between processes (the web answers a message, a worker
handles it, the scheduler paces a campaign) and outlives a deploy in a running Redis:
change one here only with a plan for the keys already written. Modules import the
builders, never spell a key themselves, so two modules that meet in Redis need not
import each other.
"""
from __future__ import annotations

import hashlib

# --- rq queues -------------------------------------------------------------------------
# Inbound handling must not wait behind a bulk campaign, so they get their own queues.
QUEUE_NAMES = ("inbound", "outbound", "scheduled", "bulk")


def send_job_id(outbox_id: int, at_s: int) -> str:
    """The rq job that sends one outbox row (the second keeps a re-queue apart)."""
    return f"send-{outbox_id}-{at_s}"


def media_job_id(ticket_media_id: int) -> str:
    """The rq job that fetches one photo of a ticket (one job per row)."""
    return f"media-{ticket_media_id}"


# --- ingress: one message from the platform to a passive reply ---------------------------

# The inbound lane: a plain list of inbox ids that `guanjia worker` pops (bot/inbox.py).
INBOUND_LANE = "guanjia:lane:inbound"


def nonce(channel: str, timestamp: str, nonce_value: str) -> str:
    """A timestamp+nonce already used (bot/channels/common.py::check_replay); the nonce is hashed."""
    return f"guanjia:nonce:{channel}:{timestamp}:{hashlib.sha256(nonce_value.encode()).hexdigest()[:24]}"


def dedup(channel: str, dedup_key: str) -> str:
    """A platform retry of a message already accepted (the inbox's first layer)."""
    return f"guanjia:dedup:{channel}:{dedup_key}"


def reply_list(inbox_id: int) -> str:
    """Where the worker hands its replies to the web request waiting for them."""
    return f"guanjia:reply:{inbox_id}"


def reply_claim(inbox_id: int) -> str:
    """The race of web and worker for the passive reply: who sets it decides passive or push."""
    return f"guanjia:claim:{inbox_id}"


# --- liveness ------------------------------------------------------------------------------

def heartbeat(kind: str) -> str:
    """A hash member -> last round, for the scheduler or the workers (/healthz)."""
    return f"guanjia:heartbeat:{kind}"


SCHEDULER_LEADER = "guanjia:scheduler:leader"


# --- outbound ------------------------------------------------------------------------------

RATE_LIMIT_PREFIX = "guanjia:rl:"


def rate_limit(limit_name: str) -> str:
    """A sliding window of bot/outbound/ratelimit.py (the limit names say platform and scope)."""
    return RATE_LIMIT_PREFIX + limit_name


def token(name: str) -> str:
    """An access token or JS-SDK ticket shared by every process; suffixes
    `:lock`, `:bad`, `:error`, `:discarded` hang off it (bot/outbound/tokens.py)."""
    return f"guanjia:token:{name}"


# --- console ---------------------------------------------------------------------------------

def login_attempts(user_digest: str | None, address: str) -> str:
    """Failed sign-ins counted per (user, address), or per address when `user_digest` is None.
    The user is a digest: no names in Redis key listings."""
    if user_digest is None:
        return f"console:login:a:{address}"
    return f"console:login:ua:{user_digest}:{address}"


# --- capabilities --------------------------------------------------------------------------

ARCHIVE_POLL_LOCK = "guanjia:archive:lock"  # one poller of the chat archive at a time


def campaign_lock(campaign_id: int, shard: int) -> str:
    """The lease of the one runner of a campaign's shard."""
    return f"sched:campaign-lock:{campaign_id}:{shard}"


def campaign_queued(campaign_id: int, shard: int) -> str:
    """Set while a chunk of the shard is queued or running, so it is queued once."""
    return f"sched:campaign-queued:{campaign_id}:{shard}"


def campaign_inflight(campaign_id: int, shard: int = 0) -> str:
    """The outbox ids a shard's runner has handed to the platform and not yet recorded."""
    return f"sched:campaign-inflight:{campaign_id}:{shard}"
