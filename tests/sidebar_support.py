"""The /sidebar app served on loopback against the fake platform, and sign-in helpers.

Sign-in goes through the fake's OAuth pages exactly as through WeCom's: there
is no test bypass in the app.
"""
from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests


@pytest.fixture
def sidebar_app(demo, outbound_env, monkeypatch):
    """Base URL of the app (demo community, WeCom against the fake platform, its OAuth page too)."""
    from werkzeug.serving import make_server

    fake = outbound_env["fake"]
    monkeypatch.setenv("GUANJIA_JSSDK_URL", "")  # no network in tests: the browser test injects a stand-in
    monkeypatch.setenv("GUANJIA_WECOM_OAUTH_BASE", fake.base_url)
    monkeypatch.delenv("GUANJIA_SECRET_KEY", raising=False)  # the key derived from WECOM_SECRET
    from ground.config import reset_settings

    reset_settings()
    from bot.web import create_app

    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("GUANJIA_PUBLIC_URL", base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


def login_state(http: requests.Session, base: str, path: str = "/sidebar") -> str:
    """Open a page without a session: the app redirects to the authorize page; its `state`."""
    resp = http.get(base + path, allow_redirects=False)
    assert resp.status_code == 302, resp.text
    return parse_qs(urlsplit(resp.headers["Location"]).query)["state"][0]


def sign_in(base: str, fake, userid: str) -> requests.Session:
    """A requests session signed in as `userid` through the fake's authorize page."""
    fake.config(oauth_authorize_user=userid)
    http = requests.Session()
    resp = http.get(base + "/sidebar", timeout=10)
    assert resp.status_code == 200, resp.text
    assert http.cookies.get("guanjia_sidebar")
    return http


def suggest(texts: list[str], group: str = "wr_vip_01", staff: str = "kefu_xiaomei") -> list[int]:
    from store.db import session_scope
    from store.models.groups import GroupSuggestion

    ids = []
    with session_scope() as s:
        for i, t in enumerate(texts):
            row = GroupSuggestion(group_chat_id=group, staff_userid=staff, reply_to="wm_li",
                                  question=f"问题{i}", text=t, intent="faq", dedup_key=f"t:{group}:{t}")
            s.add(row)
            s.flush()
            ids.append(row.id)
    return ids
