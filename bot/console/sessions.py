"""Server-side console sessions (issue 13, item 6).

The browser's cookie (Flask's signed session) carries a random session id and
the CSRF token; the `console_sessions` row decides whether the id still means
anyone. So:
- sign-out ends the row: the old cookie, replayed, is nobody;
- a session idle for GUANJIA_CONSOLE_IDLE_MIN (30) ends, and every session
  ends GUANJIA_CONSOLE_SESSION_HOURS (12) after sign-in whatever the activity;
- signing in always starts a new id (and a new CSRF token), ending the one the
  browser came with: a planted id is worth nothing (session fixation).
"""
from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ground.config import ConfigError
from store.models import ConsoleSession

TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at written at most once a minute per session
KEEP_ENDED = timedelta(days=30)  # ended sessions stay this long (who was signed in when), then go


def _minutes(name: str, default: float) -> float:
    raw = os.environ.get(name) or ""
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be above 0, got {raw!r}")
    return value


def idle_timeout() -> timedelta:
    return timedelta(minutes=_minutes("GUANJIA_CONSOLE_IDLE_MIN", 30))


def lifetime() -> timedelta:
    return timedelta(hours=_minutes("GUANJIA_CONSOLE_SESSION_HOURS", 12))


def _hash(token: str) -> str:
    return hashlib.sha256(("console-session:" + token).encode()).hexdigest()


def start(db: Session, now: datetime, user_id: int | None, admin_fp: str | None = None,
          address: str | None = None) -> str:
    """A new session; returns the id for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    # Sign-ins are rare: tidying here keeps the table small without a job of its own.
    db.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now - KEEP_ENDED))
    db.add(ConsoleSession(token_hash=_hash(token), user_id=user_id, admin_fp=admin_fp,
                          address=(address or "")[:64] or None, created_at=now, last_seen_at=now,
                          expires_at=now + lifetime()))
    db.flush()
    return token


def resolve(db: Session, token: str | None, now: datetime) -> ConsoleSession | None:
    """The live session for a cookie's id, touched; None when unknown, ended, idle or expired."""
    if not token or not isinstance(token, str) or len(token) > 100:
        return None
    row = db.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == _hash(token)))
    if row is None or row.ended_at is not None:
        return None
    if now >= row.expires_at:
        row.ended_at, row.end_reason = now, "expired"
        return None
    if now - row.last_seen_at >= idle_timeout():
        row.ended_at, row.end_reason = now, "idle"
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return row


def end(db: Session, token: str | None, now: datetime, reason: str = "logout") -> bool:
    if not token or not isinstance(token, str):
        return False
    return bool(db.execute(update(ConsoleSession).where(ConsoleSession.token_hash == _hash(token),
                                                        ConsoleSession.ended_at.is_(None))
                           .values(ended_at=now, end_reason=reason)).rowcount)


def end_all_for_user(db: Session, user_id: int, now: datetime, reason: str = "disabled") -> int:
    """Every live session of a user (disabling them, changing their password)."""
    return db.execute(update(ConsoleSession).where(ConsoleSession.user_id == user_id,
                                                   ConsoleSession.ended_at.is_(None))
                      .values(ended_at=now, end_reason=reason)).rowcount
