"""Who is calling the admin API or the console, and what their role allows.

One place for both: the API authenticates a bearer token (the deployment's
GUANJIA_ADMIN_TOKEN, or a per-user token), the console a logged-in session.
Both end in a `Principal` with a role; pages and endpoints state the least
role they need. Owner records need a manager (RULES.md: reading one needs a
manager's approval), so a leaked staff token cannot read them.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ground import clock
from store.models import ApiToken, AuditLog, ConsoleUser, Staff
from store.models.accounts import ROLE_RANK, ROLES, hash_token

ADMIN_USERNAME = "admin"  # the principal behind GUANJIA_ADMIN_TOKEN


@dataclass(frozen=True)
class Principal:
    username: str
    name: str
    role: str
    user_id: int | None = None
    staff_id: int | None = None
    via: str = "session"  # session / admin_token / user_token

    def at_least(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]

    @property
    def actor(self) -> str:
        """The audit-log actor: who did it and through what."""
        return f"console:{self.username}" if self.via == "session" else f"api:{self.username}"


ADMIN = Principal(ADMIN_USERNAME, "管理员", "manager", via="admin_token")


def check_admin_token(given: str, configured: str | None) -> bool:
    # compare_digest: a timing side channel must not leak the token byte by byte.
    return bool(configured) and hmac.compare_digest(given.encode(), configured.encode())


def principal_for(user: ConsoleUser, via: str) -> Principal:
    return Principal(user.username, user.name, user.role, user.id, user.staff_id, via)


def from_bearer(session: Session, header: str | None, admin_token: str | None) -> Principal | None:
    """The principal for an `Authorization: Bearer ...` header, or None."""
    if not header or not header.startswith("Bearer "):
        return None
    token = header[len("Bearer "):].strip()
    if not token:
        return None
    if check_admin_token(token, admin_token):
        return ADMIN
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token),
                                                ApiToken.revoked.is_(False)))
    if row is None or not row.user.active:
        return None
    row.last_used_at = clock.now()
    return principal_for(row.user, "user_token")


def verify_login(session: Session, username: str, password: str) -> ConsoleUser | None:
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.username == username))
    if user is None or not user.active or not check_password_hash(user.password_hash, password):
        return None
    user.last_login_at = clock.now()
    return user


def create_user(session: Session, username: str, name: str, role: str, password: str,
                staff_userid: str | None = None, hash_method: str = "scrypt") -> ConsoleUser:
    """A console user; raises ValueError naming the bad field."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 64 or username == ADMIN_USERNAME:
        raise ValueError("username must be 1-64 characters and not 'admin'")
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    if session.scalar(select(ConsoleUser).where(ConsoleUser.username == username)):
        raise ValueError(f"username {username!r} is taken")
    staff_id = None
    if staff_userid:
        staff = session.scalar(select(Staff).where(Staff.userid == staff_userid))
        if staff is None:
            raise ValueError(f"staff userid {staff_userid!r} is unknown")
        staff_id = staff.id
    user = ConsoleUser(username=username, name=name or username, role=role,
                       password_hash=generate_password_hash(password, method=hash_method), staff_id=staff_id)
    session.add(user)
    session.flush()
    return user


def issue_token(session: Session, user: ConsoleUser, label: str | None = None) -> str:
    """A new API token for the user; the plain token is shown once and only its hash is kept."""
    token = "gj_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), label=label))
    session.flush()
    return token


def audit(session: Session, who: Principal, action: str, target: str | None = None,
          detail: dict | None = None) -> None:
    """Record a look-up or change; owner-record reads are never unlogged."""
    session.add(AuditLog(actor=who.actor, action=action, target=target, detail=detail))


def event_actor(session: Session, who: Principal) -> str:
    """The actor written into capability events: the WeCom userid when the console
    user is linked to a staff record (so the story reads "陈主管 transferred"),
    otherwise console:<username> / api:<username>."""
    if who.staff_id:
        staff = session.get(Staff, who.staff_id)
        if staff is not None:
            return staff.userid
    return who.actor
