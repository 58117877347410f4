"""Settings from the environment (and a `.env` file), validated once at start.

Every setting CONTRACT.md names lives here; a missing or malformed value raises
`ConfigError` naming the variable, so a bad deployment fails loudly at start
instead of at the first message.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


def _number(name: str, default: float, convert: type, what: str) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return convert(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None


def _int(name: str, default: int) -> int:
    return _number(name, default, int, "a whole number")


def _float(name: str, default: float) -> float:
    return _number(name, default, float, "a number")


def _bool(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (on or off), got {raw!r}")


def _str(name: str, default: str | None = None) -> str | None:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else raw


def env(var: str, default: Any, low: float | None = None, high: float | None = None) -> Any:
    """A dataclass field read from environment variable `var` by `from_env`: parsed as the
    field's type (int, float, bool or str), `default` when unset or empty, refused below
    `low` or above `high`. The one place a setting's variable, default and bounds are said."""
    return field(default=default, metadata={"env": (var, low, high)})


_PARSERS = {"int": _int, "float": _float, "bool": _bool, "str": _str}


def from_env(cls: type) -> dict[str, Any]:
    """The values of dataclass `cls`'s `env(...)` fields, by field name. Every value is parsed
    before any bound is checked, so a malformed value is named before one out of range."""
    declared = [(f, f.metadata["env"]) for f in fields(cls) if "env" in f.metadata]
    # f.type is the annotation's text under `from __future__ import annotations`, else the type.
    values = {f.name: _PARSERS[getattr(f.type, "__name__", f.type)](var, f.default) for f, (var, _, _) in declared}
    for f, (var, low, high) in declared:
        if low is not None:
            _check_range(var, values[f.name], low, high)
    return values


@dataclass(frozen=True)
class ChannelSettings:
    """One platform's credentials; `enabled` is False when none are given."""

    app_id: str | None = None
    secret: str | None = None
    token: str | None = None
    aes_key: str | None = None
    agent_id: str | None = None
    api_base: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.app_id and self.token)


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    wechat: ChannelSettings
    wecom: ChannelSettings
    admin_token: str | None
    var_dir: Path
    # Ingress
    timestamp_window_s: int = env("GUANJIA_TIMESTAMP_WINDOW_S", 300, low=0)
    max_body_bytes: int = env("GUANJIA_MAX_BODY_BYTES", 256 * 1024, low=1024)
    # The platforms give up after 5 s; a longer wait would answer nobody.
    passive_budget_s: float = env("GUANJIA_PASSIVE_BUDGET_S", 3.0, low=0, high=4.5)
    dedup_ttl_s: int = env("GUANJIA_DEDUP_TTL_S", 600, low=60)
    # Outbound limits (PLATFORM.md); settings because the platforms change them.
    wecom_per_member_per_minute: int = env("GUANJIA_WECOM_PER_MEMBER_PER_MINUTE", 30)
    wecom_per_member_per_hour: int = env("GUANJIA_WECOM_PER_MEMBER_PER_HOUR", 1000)
    wecom_app_per_minute: int = env("GUANJIA_WECOM_APP_PER_MINUTE", 10000)
    mp_cs_per_window: int = env("GUANJIA_MP_CS_PER_WINDOW", 5)
    outbox_max_attempts: int = env("GUANJIA_OUTBOX_MAX_ATTEMPTS", 6, low=1)
    timezone: str = env("GUANJIA_TIMEZONE", "Asia/Shanghai")
    web_workers: int = env("GUANJIA_WEB_WORKERS", 2, low=1, high=64)  # gunicorn processes (deploy/gunicorn.conf.py)
    # Threads each: a passive-reply wait holds one for up to the budget.
    web_threads: int = env("GUANJIA_WEB_THREADS", 16, low=1, high=256)
    inbound_threads: int = env("GUANJIA_INBOUND_THREADS", 2, low=1, high=64)  # inbound-lane consumers per worker
    # Plain text messages handled in the web process (inbox row first, the outcome in its
    # own short transaction, the passive reply without a hop through Redis and a worker);
    # off: every message goes through the inbound lane to `guanjia worker` (bot/webhooks.py).
    handle_in_web: bool = env("GUANJIA_HANDLE_IN_WEB", True)
    # The passive budget counts from the platform's signed timestamp (bot/webhooks.py); off
    # for a server whose clock cannot be kept near the platform's, or requests signed ahead.
    passive_from_timestamp: bool = env("GUANJIA_PASSIVE_FROM_TIMESTAMP", True)
    # The web process's group commit (store/group_commit.py): how long its writer waits
    # for more rows after the first; 0 = each request commits its own transaction.
    group_commit_ms: float = env("GUANJIA_GROUP_COMMIT_MS", 2.0, low=0, high=50)
    extra: dict = field(default_factory=dict)


def _check_aes_key(name: str, value: str | None) -> None:
    if value is None:
        return
    if len(value) != 43:
        raise ConfigError(f"{name} must be the 43-character EncodingAESKey, got {len(value)} characters")
    import base64
    import binascii

    try:
        base64.b64decode(value + "=", validate=True)
    except binascii.Error:
        raise ConfigError(f"{name} must be base64 (letters and digits), as the platform's console shows it") from None


def _check_range(name: str, value: float, low: float, high: float | None = None) -> None:
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bound}, got {value}")


def _check_url(name: str, value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")


def _check_pair(first: str, second: str) -> None:
    """Half a channel is a typo, not a choice: name the half that is missing."""
    a, b = _str(first), _str(second)
    if bool(a) != bool(b):
        missing = second if a else first
        raise ConfigError(f"{missing} is required when {first if a else second} is set")


def load_settings(env_file: str | os.PathLike | None = None) -> Settings:
    """Read the environment (after `.env`, which never overrides real variables)."""
    load_dotenv(env_file or PROJECT_ROOT / ".env", override=False)
    var_dir = Path(_str("GUANJIA_VAR_DIR", str(Path.cwd() / "var")))
    database_url = _str("DATABASE_URL") or f"sqlite:///{var_dir / 'guanjia.db'}"
    if "://" not in database_url:
        raise ConfigError(f"DATABASE_URL must be an SQLAlchemy URL such as sqlite:///var/guanjia.db, got {database_url!r}")
    redis_url = _str("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL must start with redis://, rediss:// or unix://, got {redis_url!r}")

    wechat = ChannelSettings(
        app_id=_str("WECHAT_APPID"), secret=_str("WECHAT_SECRET"), token=_str("WECHAT_TOKEN"),
        aes_key=_str("WECHAT_AES_KEY"),
        api_base=_str("WECHAT_API_BASE", "https://api.weixin.qq.com").rstrip("/"),
    )
    wecom = ChannelSettings(
        app_id=_str("WECOM_CORP_ID"), secret=_str("WECOM_SECRET"), token=_str("WECOM_TOKEN"),
        aes_key=_str("WECOM_AES_KEY"), agent_id=_str("WECOM_AGENT_ID"),
        api_base=_str("WECOM_API_BASE", "https://qyapi.weixin.qq.com").rstrip("/"),
    )
    _check_pair("WECHAT_APPID", "WECHAT_TOKEN")
    _check_pair("WECOM_CORP_ID", "WECOM_TOKEN")
    _check_url("WECHAT_API_BASE", wechat.api_base)
    _check_url("WECOM_API_BASE", wecom.api_base)
    _check_aes_key("WECHAT_AES_KEY", wechat.aes_key)
    _check_aes_key("WECOM_AES_KEY", wecom.aes_key)
    if wecom.app_id and wecom.token and not wecom.aes_key:
        raise ConfigError("WECOM_AES_KEY is required when WECOM_CORP_ID and WECOM_TOKEN are set (WeCom always encrypts)")
    if wecom.agent_id is not None and not wecom.agent_id.isdigit():
        raise ConfigError(f"WECOM_AGENT_ID must be a number, got {wecom.agent_id!r}")

    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        wechat=wechat,
        wecom=wecom,
        admin_token=_str("GUANJIA_ADMIN_TOKEN"),
        var_dir=var_dir,
        **from_env(Settings),
    )
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(settings.timezone)
    except Exception:
        raise ConfigError(f"GUANJIA_TIMEZONE must be an IANA zone such as Asia/Shanghai, got {settings.timezone!r}") from None
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
