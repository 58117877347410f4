"""Console pages. Every page names the least role it needs (`@page(role)`);
the role is re-read from the database on each request so disabling a user or
lowering a role takes effect at once, not at the next login."""
from __future__ import annotations

import functools
import hmac
import secrets
from typing import Callable

from flask import (abort, current_app, flash, g, redirect, render_template, request, session,
                   url_for)
from sqlalchemy import select

from bot.console import bp, labels, sessions, throttle
from bot.console.auth import ADMIN, Principal, audit, check_admin_token, principal_for, verify_login
from bot.web_guard import client_address
from ground import clock
from store.db import session_scope
from store.models import ConsoleUser

NAV = [  # (endpoint, label, least role)
    ("console.today", "今日", "staff"),
    ("console.tickets", "工单", "staff"),
    ("consultations.inbox", "咨询", "staff"),
    ("console.satisfaction", "满意度", "supervisor"),
    ("console.kb", "知识库", "staff"),
    ("console.announcements", "公告", "supervisor"),
    ("console.roster", "值班", "staff"),
    ("console.owners", "业主", "manager"),
    ("console.audit_log", "审计", "manager"),
]


def _current_principal() -> Principal | None:
    """Who the cookie's session id (bot/console/sessions.py) belongs to, or None:
    unknown, signed out, idle, expired, a disabled user, a changed admin token."""
    row = sessions.resolve(g.db, session.get("sid"), clock.now())
    if row is None:
        return None
    if row.user_id is None:
        # Signed in with GUANJIA_ADMIN_TOKEN: valid only while the token still is.
        tok = current_app.config["GUANJIA_SETTINGS"].admin_token
        return ADMIN if tok and row.admin_fp == _fingerprint(tok) else None
    user = g.db.get(ConsoleUser, row.user_id)
    if user is None or not user.active:
        return None
    return principal_for(user, "session")


def _fingerprint(token: str) -> str:
    import hashlib

    return hashlib.sha256(("console:" + token).encode()).hexdigest()[:16]


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def _check_csrf() -> None:
    # Same-site cookies already stop most forgeries; the token covers old browsers.
    if request.method == "POST":
        expected, given = session.get("csrf") or "", request.form.get("csrf") or ""
        if not expected or not hmac.compare_digest(expected, given):
            abort(400, "表单已过期，请刷新后重试")


def page(role: str) -> Callable:
    """The page needs a login with at least `role`; opens `g.db` for the request."""
    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with session_scope() as s:
                g.db = s
                who = _current_principal()
                if who is None:
                    return redirect(url_for("console.login", next=request.full_path))
                g.principal = who
                if not who.at_least(role):
                    return render_template("forbidden.html", need=role), 403
                _check_csrf()
                return fn(*args, **kwargs)
        return wrapper
    return deco


@bp.app_context_processor
def _inject() -> dict:
    who = g.get("principal")
    nav = [(ep, label) for ep, label, role in NAV if who and who.at_least(role)]
    return {"nav": nav, "me": who, "csrf_token": csrf_token, "now_local": labels.local(clock.now()),
            "staff_name": staff_name, "L": labels, "action_label": lambda a: ACTION_LABELS.get(a, a)}


# Ticket events as people read them (the raw action stays in the API).
ACTION_LABELS = {
    "created": "登记", "dispatched": "派单", "accepted": "接单", "on_the_way": "出发", "on_site": "到场",
    "progress": "进展", "completed": "完成", "result_sent": "告知结果", "called_back": "回访", "reopened": "重新处理",
    "closed": "办结", "transferred": "转派", "taken_over": "接管", "survey": "评价", "redispatched": "改派",
    "clock_started": "开始计时", "clock_met": "按时完成", "clock_late": "超时完成", "clock_warned": "即将超时提醒",
    "clock_breached": "超时", "escalated": "升级",
    "photo_added": "业主发来照片", "location_added": "业主发来位置", "voice_added": "业主发来语音", "media_fetched": "照片已保存",
    "media_failed": "照片获取失败", "conduct_reported": "员工服务投诉已告知主管",
}


def names():
    """Who an actor is, for this request (staff, owners, console users by name)."""
    n = g.get("_names")
    if n is None:
        n = g._names = labels.Names(g.db)
    return n


def staff_name(userid: str | None) -> str:
    """A person's name for a userid / openid / console actor; never the raw id of an owner."""
    if not userid:
        return ""
    if g.get("db") is None:
        return userid
    return names()(userid)


@bp.app_template_filter("cst")
def _cst(dt, fmt: str = "%m-%d %H:%M") -> str:
    """A time in the community's time zone (GUANJIA_TIMEZONE)."""
    return labels.fmt_time(dt, fmt)


@bp.app_template_filter("when")
def _when(dt) -> str:
    return labels.fmt_when(dt, clock.now())


# --- login -----------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    nxt = request.values.get("next") or url_for("console.today")
    if not nxt.startswith("/console") or nxt.startswith("//"):  # no open redirects
        nxt = url_for("console.today")
    if request.method == "POST":
        _check_csrf()  # the sign-in form carries a token too (login CSRF)
        username = (request.form.get("username") or "").strip()[:64]
        password = request.form.get("password") or ""
        address = client_address()
        # Counted before the password is looked at (atomic), per name and address.
        if not throttle.begin_attempt(username, address):
            return render_template("login.html", error="尝试次数过多，请15分钟后再试", next=nxt), 429
        with session_scope() as s:
            now = clock.now()
            tok = current_app.config["GUANJIA_SETTINGS"].admin_token
            user = None
            admin = username == "admin" and check_admin_token(password, tok)
            if not admin:
                user = verify_login(s, username, password)
            if admin or user is not None:
                # A new session id and CSRF token at every sign-in; the one the browser
                # brought (perhaps planted) is ended.
                sessions.end(s, session.get("sid"), now, "rotated")
                session.clear()
                session["sid"] = sessions.start(s, now, None if admin else user.id,
                                                _fingerprint(tok) if admin else None, address)
                session["csrf"] = secrets.token_urlsafe(24)
                session.permanent = True
                who = ADMIN if admin else principal_for(user, "session")
                audit(s, who, "console.login", "admin" if admin else user.username)
                throttle.succeeded(username, address)
                return redirect(nxt)
            audit(s, Principal(username[:40] or "?", "", "staff"), "console.login_failed", username[:64])
        error = "用户名或密码错误"
    return render_template("login.html", error=error, next=nxt), (401 if error else 200)


@bp.post("/logout")
def logout():
    _check_csrf()  # a forged sign-out is a nuisance; the token makes it impossible
    with session_scope() as s:
        sessions.end(s, session.get("sid"), clock.now(), "logout")
    session.clear()
    return redirect(url_for("console.login"))


@bp.get("/")
def index():
    return redirect(url_for("console.today"))
