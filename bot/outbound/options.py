"""Outbound knobs that are not platform limits (those live in ground.config.Settings).

Read from the environment on each call (cheap) so tests can shorten time-outs
and back-offs with monkeypatch; a malformed value fails naming the variable.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ground.config import ConfigError, _check_range, _float


def _num(name: str, default: float) -> float:
    value = _float(name, default)
    _check_range(name, value, 0)
    return value


@dataclass(frozen=True)
class OutboundOptions:
    http_timeout_s: float  # per platform call; the platforms answer in well under a second
    backoff_base_s: float  # first retry delay; doubles per attempt (with jitter)
    backoff_max_s: float
    inline_wait_s: float  # a rate-limit wait up to this is slept in the worker, longer ones are deferred
    lease_s: float  # how long a claimed row is ours before the sweeper may hand it to another worker
    token_margin_s: float  # refresh tokens this long before the platform's expiry
    wechat_token_mode: str  # "stable" (stable_token, no rotation) or "token" (/cgi-bin/token)
    public_url: str  # where staff open the sidebar page (group_task links)


def get_options() -> OutboundOptions:
    mode = os.environ.get("GUANJIA_WECHAT_TOKEN_MODE", "stable") or "stable"
    if mode not in ("stable", "token"):
        raise ConfigError(f"GUANJIA_WECHAT_TOKEN_MODE must be 'stable' or 'token', got {mode!r}")
    return OutboundOptions(
        http_timeout_s=_num("GUANJIA_HTTP_TIMEOUT_S", 5.0),
        backoff_base_s=_num("GUANJIA_OUTBOX_BACKOFF_S", 10.0),
        backoff_max_s=_num("GUANJIA_OUTBOX_BACKOFF_MAX_S", 1800.0),
        inline_wait_s=_num("GUANJIA_RATE_INLINE_WAIT_S", 1.0),
        lease_s=_num("GUANJIA_OUTBOX_LEASE_S", 120.0),
        token_margin_s=_num("GUANJIA_TOKEN_MARGIN_S", 300.0),
        wechat_token_mode=mode,
        public_url=(os.environ.get("GUANJIA_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
    )
