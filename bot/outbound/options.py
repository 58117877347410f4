"""Outbound knobs that are not platform limits (those live in ground.config.Settings).

Read from the environment on each call (cheap) so tests can shorten time-outs
and back-offs with monkeypatch; a malformed value fails naming the variable.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ground.config import ConfigError, env, from_env


@dataclass(frozen=True)
class OutboundOptions:
    wechat_token_mode: str  # "stable" (stable_token, no rotation) or "token" (/cgi-bin/token)
    public_url: str  # where staff open the sidebar page (group_task links)
    # Per platform call; the platforms answer in well under a second.
    http_timeout_s: float = env("GUANJIA_HTTP_TIMEOUT_S", 5.0, low=0)
    # First retry delay; doubles per attempt (with jitter).
    backoff_base_s: float = env("GUANJIA_OUTBOX_BACKOFF_S", 10.0, low=0)
    backoff_max_s: float = env("GUANJIA_OUTBOX_BACKOFF_MAX_S", 1800.0, low=0)
    # A rate-limit wait up to this is slept in the worker, longer ones are deferred.
    inline_wait_s: float = env("GUANJIA_RATE_INLINE_WAIT_S", 1.0, low=0)
    # How long a claimed row is ours before the sweeper may hand it to another worker.
    lease_s: float = env("GUANJIA_OUTBOX_LEASE_S", 120.0, low=0)
    token_margin_s: float = env("GUANJIA_TOKEN_MARGIN_S", 300.0, low=0)  # refresh tokens this long before expiry


def get_options() -> OutboundOptions:
    mode = os.environ.get("GUANJIA_WECHAT_TOKEN_MODE", "stable") or "stable"
    if mode not in ("stable", "token"):
        raise ConfigError(f"GUANJIA_WECHAT_TOKEN_MODE must be 'stable' or 'token', got {mode!r}")
    return OutboundOptions(
        wechat_token_mode=mode,
        public_url=(os.environ.get("GUANJIA_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
        **from_env(OutboundOptions),
    )
