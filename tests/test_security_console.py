"""Console sign-in (issue 13, item 6): an atomic, per user+address limit that
holds with Redis down; server-side sessions that end at sign-out, expire when
idle and rotate at sign-in; Secure cookies over https; CSRF on the sign-in and
sign-out forms."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.console_support import ADMIN_TOKEN, PASSWORD, api  # noqa: F401
from tests.test_security_scope import _csrf_of, login


@pytest.fixture(autouse=True)
def _fresh_local_counts():
    from bot.console import throttle

    throttle.reset_local()
    yield
    throttle.reset_local()


def _failed_evaluations() -> int:
    from store.db import session_scope
    from store.models import AuditLog

    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "console.login_failed"))


def _attempt(client, username: str, password: str, address: str = "203.0.113.7"):
    csrf = _csrf_of(client, "/console/login")
    return client.post("/console/login", data={"username": username, "password": password, "csrf": csrf},
                       headers={"X-Real-IP": address})


def test_64_parallel_wrong_passwords_are_not_all_evaluated(api):
    app = api.client.application
    clients = [app.test_client() for _ in range(64)]
    csrfs = [_csrf_of(c, "/console/login") for c in clients]
    statuses: list[int] = []
    barrier = threading.Barrier(64)

    def go(c, csrf):
        barrier.wait()
        r = c.post("/console/login", data={"username": "manager", "password": "wrong-guess", "csrf": csrf},
                   headers={"X-Real-IP": "198.51.100.1"})
        statuses.append(r.status_code)

    threads = [threading.Thread(target=go, args=(c, t)) for c, t in zip(clients, csrfs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(statuses) == 64 and sorted(set(statuses)) == [401, 429], statuses
    assert statuses.count(401) == 5 and statuses.count(429) == 59
    assert _failed_evaluations() == 5  # the other 59 passwords were never looked at


def test_a_stranger_cannot_lock_the_manager_out_from_elsewhere(api):
    c = api.client
    for _ in range(5):
        assert _attempt(c, "manager", "guess", "203.0.113.66").status_code == 401
    assert _attempt(c, "manager", PASSWORD, "203.0.113.66").status_code == 429  # that address is locked
    assert _attempt(api.client.application.test_client(), "manager", PASSWORD, "192.0.2.10").status_code == 302


def test_one_address_cannot_spray_many_names(api):
    c = api.client
    from bot.console.throttle import MAX_PER_ADDRESS

    for i in range(MAX_PER_ADDRESS):
        assert _attempt(c, f"user{i}", "guess", "203.0.113.99").status_code == 401
    assert _attempt(c, "staff", PASSWORD, "203.0.113.99").status_code == 429


def test_the_limit_holds_with_redis_down(api, redis_server):
    c = api.client
    redis_server.stop()
    try:
        statuses = [_attempt(c, "supervisor", "guess", "203.0.113.5").status_code for _ in range(7)]
    finally:
        redis_server.start()
    assert statuses == [401] * 5 + [429] * 2


def test_sign_in_needs_the_forms_csrf_token(api):
    c = api.client
    c.get("/console/login")
    r = c.post("/console/login", data={"username": "manager", "password": PASSWORD})
    assert r.status_code == 400
    assert c.get("/console/today").status_code == 302  # not signed in


def test_sign_out_needs_the_csrf_token_and_really_ends_the_session(api):
    c = api.client
    assert login(c, "manager").status_code == 302
    stolen = c.get_cookie("session").value
    assert c.post("/console/logout").status_code == 400  # a forged sign-out does nothing
    assert c.get("/console/today").status_code == 200
    csrf = _csrf_of(c, "/console/today")
    assert c.post("/console/logout", data={"csrf": csrf}).status_code == 302
    assert c.get("/console/today").status_code == 302
    # The cookie copied before the sign-out is worth nothing now.
    other = api.client.application.test_client()
    other.set_cookie("session", stolen)
    r = other.get("/console/today")
    assert r.status_code == 302 and "/console/login" in r.location


def test_sign_in_rotates_the_session(api):
    c = api.client
    assert login(c, "staff").status_code == 302
    first = c.get_cookie("session").value
    assert login(c, "manager").status_code == 302
    assert c.get_cookie("session").value != first
    replay = api.client.application.test_client()
    replay.set_cookie("session", first)
    assert replay.get("/console/today").status_code == 302


def test_idle_sessions_expire_and_active_ones_do_not(api, frozen_clock):
    c = api.client
    assert login(c, "manager").status_code == 302
    for _ in range(4):  # 4 x 20 min of activity: alive
        frozen_clock.advance(minutes=20)
        assert c.get("/console/today").status_code == 200
    frozen_clock.advance(minutes=31)
    assert c.get("/console/today").status_code == 302
    from store.db import session_scope
    from store.models import ConsoleSession

    with session_scope() as s:
        assert [r.end_reason for r in s.scalars(select(ConsoleSession))] == ["idle"]


def test_sessions_end_after_their_lifetime_whatever_the_activity(api, frozen_clock):
    c = api.client
    assert login(c, "manager").status_code == 302
    for _ in range(12 * 3):
        frozen_clock.advance(minutes=20)
        c.get("/console/today")
    assert c.get("/console/today").status_code == 302


def test_cookie_is_secure_over_https_and_short_lived(api, monkeypatch):
    from ground.config import reset_settings
    from bot.web import create_app

    monkeypatch.setenv("GUANJIA_PUBLIC_URL", "https://guanjia.example.com")
    reset_settings()
    client = create_app().test_client()
    r = login(client, "manager")
    cookie = r.headers.get("Set-Cookie")
    assert r.status_code == 302 and "Secure" in cookie and "HttpOnly" in cookie
    assert client.get_cookie("session").expires is not None
    from datetime import datetime, timezone

    assert client.get_cookie("session").expires - datetime.now(timezone.utc) <= timedelta(hours=12, minutes=1)
    plain = login(api.client, "manager").headers.get("Set-Cookie")  # GUANJIA_PUBLIC_URL not https
    assert "Secure" not in plain


def test_admin_token_sign_in_is_a_server_side_session_too(api):
    c = api.client
    assert login(c, "admin", ADMIN_TOKEN).status_code == 302
    assert c.get("/console/owners").status_code == 200
    c.post("/console/logout", data={"csrf": _csrf_of(c, "/console/today")})
    assert c.get("/console/owners").status_code == 302


def test_the_address_comes_from_the_trusted_proxy_only(api):
    """Behind nginx (127.0.0.1) its X-Real-IP / X-Forwarded-For name the caller; a caller
    connecting directly cannot pick a new address per guess by sending those headers."""
    c = api.client
    direct = {"REMOTE_ADDR": "203.0.113.50"}
    for i in range(5):
        csrf = _csrf_of(c, "/console/login")
        r = c.post("/console/login", data={"username": "staff", "password": "guess", "csrf": csrf},
                   headers={"X-Real-IP": f"10.9.9.{i}", "X-Forwarded-For": f"10.8.8.{i}"}, environ_base=direct)
        assert r.status_code == 401
    csrf = _csrf_of(c, "/console/login")
    r = c.post("/console/login", data={"username": "staff", "password": PASSWORD, "csrf": csrf},
               headers={"X-Real-IP": "10.9.9.77"}, environ_base=direct)
    assert r.status_code == 429
    # Through the proxy, X-Forwarded-For's last hop (what nginx appended) is the caller.
    other = api.client.application.test_client()
    csrf = _csrf_of(other, "/console/login")
    r = other.post("/console/login", data={"username": "staff", "password": PASSWORD, "csrf": csrf},
                   headers={"X-Forwarded-For": "6.6.6.6, 192.0.2.44"})
    assert r.status_code == 302
