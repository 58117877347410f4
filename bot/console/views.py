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

from bot import clock
from bot.console import bp
from bot.console.auth import ADMIN, Principal, audit, check_admin_token, principal_for, verify_login
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
    uid = session.get("uid")
    if uid == "admin":
        # Logged in with GUANJIA_ADMIN_TOKEN: valid only while the token still is.
        tok = current_app.config["GUANJIA_SETTINGS"].admin_token
        return ADMIN if tok and session.get("admin_fp") == _fingerprint(tok) else None
    if not isinstance(uid, int):
        return None
    user = g.db.get(ConsoleUser, uid)
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
            from store.db import session_scope

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
    return {"nav": nav, "me": who, "csrf_token": csrf_token, "now_local": clock.local_now(),
            "staff_name": staff_name, "action_label": lambda a: ACTION_LABELS.get(a, a)}


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


def staff_name(userid: str | None) -> str:
    """A staff member's name for a userid (cached per request); other actors as they are."""
    if not userid:
        return ""
    names = g.get("_staff_names")
    if names is None:
        from store.models import Staff

        names = {s.userid: s.name for s in g.db.scalars(select(Staff))} if g.get("db") is not None else {}
        g._staff_names = names
    return names.get(userid, userid)


@bp.app_template_filter("cst")
def _cst(dt, fmt: str = "%m-%d %H:%M") -> str:
    if dt is None:
        return ""
    return dt.astimezone(clock.CST).strftime(fmt)


# --- login -----------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login():
    from store.db import session_scope

    error = None
    nxt = request.values.get("next") or url_for("console.today")
    if not nxt.startswith("/console"):  # no open redirects
        nxt = url_for("console.today")
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()
        password = request.form.get("password") or ""
        if _too_many_failures(username):
            return render_template("login.html", error="尝试次数过多，请15分钟后再试", next=nxt), 429
        with session_scope() as s:
            tok = current_app.config["GUANJIA_SETTINGS"].admin_token
            if username == "admin" and check_admin_token(password, tok):
                session.clear()
                session["uid"], session["admin_fp"] = "admin", _fingerprint(tok)
                audit(s, ADMIN, "console.login", "admin")
                return redirect(nxt)
            user = verify_login(s, username, password)
            if user is not None:
                session.clear()
                session["uid"] = user.id
                session.permanent = True
                audit(s, principal_for(user, "session"), "console.login", user.username)
                return redirect(nxt)
            audit(s, Principal(username[:40] or "?", "", "staff"), "console.login_failed", username[:64])
        _count_failure(username)
        error = "用户名或密码错误"
    return render_template("login.html", error=error, next=nxt), (401 if error else 200)


MAX_FAILURES, FAILURE_WINDOW_S = 5, 900


def _failure_key(username: str) -> str:
    return f"console:login_failures:{username[:64]}"


def _too_many_failures(username: str) -> bool:
    # Passwords guessed online: a few tries per name per quarter hour. Redis down
    # must not lock everyone out, so an error here allows the attempt.
    try:
        from bot.queues import get_redis

        return int(get_redis().get(_failure_key(username)) or 0) >= MAX_FAILURES
    except Exception:
        return False


def _count_failure(username: str) -> None:
    try:
        from bot.queues import get_redis

        r = get_redis()
        key = _failure_key(username)
        if r.incr(key) == 1:
            r.expire(key, FAILURE_WINDOW_S)
    except Exception:
        pass


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("console.login"))


@bp.get("/")
def index():
    return redirect(url_for("console.today"))


from bot.console import pages, capability_views, kb_queries  # noqa: E402,F401
