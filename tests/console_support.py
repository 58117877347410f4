"""Shared helpers for the console and admin-API tests (issue 8): users of each
role with API tokens, an authenticated client, and ticket rows to look at."""
from __future__ import annotations

from datetime import timedelta

import pytest

ADMIN_TOKEN = "test-admin-token-0123456789"
PASSWORD = "secret-pass-1"
ROLES = ("staff", "supervisor", "manager")


class Api:
    """A Flask test client that speaks as a chosen role."""

    def __init__(self, client, tokens: dict[str, str]) -> None:
        self.client, self.tokens = client, tokens

    def _h(self, role: str | None) -> dict:
        if role is None:
            return {}
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, path: str, role: str | None = "admin", **kw):
        return self.client.get("/api/v1" + path, headers=self._h(role), **kw)

    def post(self, path: str, role: str | None = "admin", **kw):
        return self.client.post("/api/v1" + path, headers=self._h(role), **kw)

    def put(self, path: str, role: str | None = "admin", **kw):
        return self.client.put("/api/v1" + path, headers=self._h(role), **kw)

    def delete(self, path: str, role: str | None = "admin", **kw):
        return self.client.delete("/api/v1" + path, headers=self._h(role), **kw)


def make_users() -> dict[str, str]:
    """One console user per role (password PASSWORD) and their API tokens."""
    from bot.console.auth import create_user, issue_token
    from store.db import session_scope

    tokens = {"admin": ADMIN_TOKEN}
    staff_ids = {"staff": "kefu_xiaomei", "supervisor": "zhuguan_chen", "manager": "jingli_lin"}
    with session_scope() as s:
        for role in ROLES:
            # A cheap hash: the tests check logins, not the hash's cost (scrypt is the default).
            user = create_user(s, role, f"测试{role}", role, PASSWORD, staff_ids[role], hash_method="pbkdf2:sha256:1000")
            tokens[role] = issue_token(s, user, "test")
    return tokens


@pytest.fixture
def api(demo, monkeypatch) -> Api:
    monkeypatch.setenv("GUANJIA_ADMIN_TOKEN", ADMIN_TOKEN)
    from ground.config import reset_settings
    from bot.web import create_app

    reset_settings()
    tokens = make_users()
    app = create_app()
    app.config["TESTING"] = True
    return Api(app.test_client(), tokens)


def make_ticket(session, *, priority: str = "urgent", state: str = "open", assignee: str | None = None,
                content: str = "厨房水管爆裂", room: str = "1-1201", minutes_ago: int = 30,
                clock_minutes: int = 15, now=None):
    """A ticket with one running clock, written straight into the tickets tables
    (the tickets capability's own flow is tested by its developer)."""
    from ground import clock
    from store.models.tickets import Ticket, TicketClock, TicketEvent

    now = now or clock.now()
    created = now - timedelta(minutes=minutes_ago)
    t = Ticket(kind="repair", priority=priority, category="plumbing", team="repair", content=content,
               state=state, channel="mp", sender="o_li", room=room, building="1栋", assignee=assignee,
               created_at=created)
    session.add(t)
    session.flush()
    session.add(TicketEvent(ticket_id=t.id, at=created, actor="o_li", action="created", detail={}))
    due = created + timedelta(minutes=clock_minutes)
    session.add(TicketClock(ticket_id=t.id, clock="on_site", rule="O5", started_at=created, due_at=due,
                            warn_at=due - timedelta(minutes=5),
                            state="breached" if due <= now else "running",
                            breached_at=due if due <= now else None))
    session.flush()
    return t


@pytest.fixture
def faq_copy(tmp_path):
    """The FAQ matcher reading a copy of faq/data, so tests that add phrasings
    never touch the repository's knowledge base."""
    yield from _faq_copy(tmp_path)


def _faq_copy(tmp_path):
    import shutil
    from pathlib import Path

    from faq import matcher

    src = Path(matcher.__file__).resolve().parent / "data"
    dst = tmp_path / "faq_data"
    shutil.copytree(src, dst)
    saved = matcher._default
    matcher._default = matcher.Matcher(dst)
    try:
        yield dst
    finally:
        matcher._default = saved


def wait_route(text: str, faq_id: str, timeout: float = 5.0) -> dict:
    """`guanjia route --json TEXT` once the matcher has hot-reloaded (it looks at mtimes every few seconds)."""
    import json
    import time

    from click.testing import CliRunner

    from bot.cli import main

    deadline = time.time() + timeout
    while True:
        # `guanjia route --json TEXT`, run in-process so it reads the same (copied) knowledge base.
        out = CliRunner().invoke(main, ["route", "--json", text])
        assert out.exit_code == 0, out.output
        res = json.loads(out.output)
        if res["faq_id"] == faq_id or time.time() > deadline:
            return res
        time.sleep(0.2)


def make_miss(session, text: str = "小区里能放风筝吗", kind: str = "handoff"):
    from faq.normalize import clean
    from store.models.faq import FaqMiss

    m = FaqMiss(text=text, normalized=clean(text)[:500], chat="private", sender="o_li", kind=kind,
                best_id="prohibited-acts", best_score=0.0, candidates=["prohibited-acts"])
    session.add(m)
    session.flush()
    return m


def csrf_of(client, path: str = "/console/login") -> str:
    """The CSRF token a console form on `path` carries (sign-in and sign-out need it)."""
    import re

    m = re.search(r'name="csrf" value="([^"]+)"', client.get(path).get_data(as_text=True))
    return m.group(1) if m else ""
