"""Console users and their API tokens (the manager's console, issue 8).

A console user is a person with a login; `role` decides what they may see.
Owner records are confidential (RULES.md), so the role is checked on every
request rather than trusting the caller: a leaked staff token must not read
them. Tokens are stored hashed: the database leaking must not leak tokens.
"""
from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.models.base import Base, Timestamped

ROLES = ("staff", "supervisor", "manager")
ROLE_RANK = {r: i for i, r in enumerate(ROLES)}


class ConsoleUser(Timestamped, Base):
    __tablename__ = "console_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16), default="staff")  # staff / supervisor / manager
    password_hash: Mapped[str] = mapped_column(String(256))
    # Link to the WeCom staff record, so "my tickets" and reassignment know who this is.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]

    def at_least(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]


class ApiToken(Timestamped, Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the token
    label: Mapped[str | None] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(default=False)
    user: Mapped[ConsoleUser] = relationship()


def hash_token(token: str) -> str:
    """Tokens are long random strings, so a plain sha256 is enough (no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleSession(Base):
    """A signed-in console browser (issue 13, item 6). The cookie carries only a random
    id; this row is the truth, so a session can be ended from the server (sign-out,
    disabling the user), expires after idling, and a sign-in always starts a new one.
    Only the id's hash is stored, like API tokens."""

    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("console_users.id"))  # None: the admin-token login
    admin_fp: Mapped[str | None] = mapped_column(String(32))  # which GUANJIA_ADMIN_TOKEN it was
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]  # absolute end, whatever the activity
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))  # logout / idle / expired / rotated
