"""/sidebar JS-SDK tickets over real HTTP (the app on loopback, the fake platform as its own
process, real Redis): wx.config signed with the company's jsapi ticket, wx.agentConfig with
the app's, both cached; the page's refresh call drops them, at most once a minute."""
from __future__ import annotations

import hashlib
import logging

import requests

from tests.fixtures_platform import AGENT_ID, CORP_ID
from tests.sidebar_support import sidebar_app, sign_in  # noqa: F401  (fixture)

CORP_PATH, AGENT_PATH = "/cgi-bin/get_jsapi_ticket", "/cgi-bin/ticket/get"


def _sig(ticket: str, c: dict, url: str) -> str:
    plain = f"jsapi_ticket={ticket}&noncestr={c['nonceStr']}&timestamp={c['timestamp']}&url={url}"
    return hashlib.sha1(plain.encode()).hexdigest()


def _config(http: requests.Session, base: str, page: str = "/sidebar?group=wr_vip_01") -> tuple[dict, str]:
    url = base + page
    resp = http.get(base + "/sidebar/api/agent-config", params={"url": url + "#x"})
    assert resp.status_code == 200, resp.text
    return resp.json(), url


def _tickets_used(http: requests.Session, base: str) -> tuple[str, str]:
    """Which (corp, agent) tickets of the candidates signed the current config."""
    c, url = _config(http, base)
    corp = next(t for t in ("corp-1", "corp-2", "corp-3") if _sig(t, c["config"], url) == c["config"]["signature"])
    agent = next(t for t in ("app-1", "app-2", "app-3") if _sig(t, c, url) == c["signature"])
    return corp, agent


def _fetches(fake) -> tuple[int, int]:
    return len(fake.sent(CORP_PATH)), len(fake.sent(AGENT_PATH))


def _refresh(http: requests.Session, base: str, tickets: list[str] | None = None) -> requests.Response:
    body = {"errMsg": "config:fail, invalid signature"}
    if tickets is not None:
        body["tickets"] = tickets
    return http.post(base + "/sidebar/api/jsapi-refresh", json=body)


def test_config_signs_both_and_each_ticket_is_fetched_once(sidebar_app, fake_platform):
    fake_platform.config(jsapi_ticket="corp-1", agent_config_ticket="app-1")
    http = sign_in(sidebar_app, fake_platform, "kefu_xiaomei")
    for page in ("/sidebar?group=wr_vip_01", "/sidebar"):
        c, url = _config(http, sidebar_app, page)
        w = c["config"]
        assert w["appId"] == CORP_ID and w["beta"] is True and "sendChatMessage" in w["jsApiList"]
        assert w["signature"] == _sig("corp-1", w, url)
        assert c["corpid"] == CORP_ID and c["agentid"] == AGENT_ID and c["signature"] == _sig("app-1", c, url)
    assert [x["query"] for x in fake_platform.sent(CORP_PATH)] == [{}]
    assert [x["query"] for x in fake_platform.sent(AGENT_PATH)] == [{"type": "agent_config"}]

    # From Redis, not the process: a fresh client (another worker) does not ask again.
    from bot.outbound.clients import reset_clients

    reset_clients()
    _config(http, sidebar_app)
    assert _fetches(fake_platform) == (1, 1)


def test_no_corp_ticket_still_gives_agent_config(sidebar_app, fake_platform):
    # Clients from 3.0.24 on need only agentConfig: the page skips wx.config.
    fake_platform.config(agent_config_ticket="app-1")
    fake_platform.fault(CORP_PATH, errcode=-1)
    http = sign_in(sidebar_app, fake_platform, "kefu_xiaomei")
    c, url = _config(http, sidebar_app)
    assert c["config"] is None and c["signature"] == _sig("app-1", c, url)


def test_refresh_discards_tickets_at_most_once_a_minute(sidebar_app, fake_platform, caplog):
    from bot.outbound.clients import get_wecom_client
    from bot.queues import get_redis

    fake_platform.config(jsapi_ticket="corp-1", agent_config_ticket="app-1")
    http = sign_in(sidebar_app, fake_platform, "kefu_xiaomei")
    assert _tickets_used(http, sidebar_app) == ("corp-1", "app-1")
    fake_platform.config(jsapi_ticket="corp-2", agent_config_ticket="app-2")  # WeCom moved on
    assert _tickets_used(http, sidebar_app) == ("corp-1", "app-1")  # still cached

    # wx.agentConfig failed: only the app's ticket is dropped and fetched again.
    with caplog.at_level(logging.WARNING, logger="bot.groups_web"):
        resp = _refresh(http, sidebar_app, ["agent"])
    assert resp.json() == {"discarded": ["agent"], "kept": []}
    assert any("kefu_xiaomei" in r.getMessage() and "invalid signature" in r.getMessage() for r in caplog.records)
    assert _tickets_used(http, sidebar_app) == ("corp-1", "app-2")
    assert _fetches(fake_platform) == (1, 2)

    # wx.config failed: the company's ticket has its own minute.
    assert _refresh(http, sidebar_app, ["corp"]).json() == {"discarded": ["corp"], "kept": []}
    assert _tickets_used(http, sidebar_app) == ("corp-2", "app-2")
    assert _fetches(fake_platform) == (2, 2)

    # Again within the minute (any member, both tickets by default): nothing is refetched.
    fake_platform.config(jsapi_ticket="corp-3", agent_config_ticket="app-3")
    other = sign_in(sidebar_app, fake_platform, "zhuguan_chen")
    assert _refresh(other, sidebar_app).json() == {"discarded": [], "kept": ["corp", "agent"]}
    assert _tickets_used(other, sidebar_app) == ("corp-2", "app-2")
    assert _fetches(fake_platform) == (2, 2)
    client = get_wecom_client()
    for cache in (client.corp_tickets, client.agent_tickets):
        assert 50 < get_redis().ttl(cache.key + ":discarded") <= 60


def test_refresh_needs_a_signed_in_staff_member(sidebar_app, fake_platform):
    from store.db import session_scope
    from store.models import Staff

    fake_platform.config(jsapi_ticket="corp-1", agent_config_ticket="app-1")
    http = sign_in(sidebar_app, fake_platform, "kefu_xiaomei")
    _config(http, sidebar_app)
    url = sidebar_app + "/sidebar/api/jsapi-refresh"
    assert requests.post(url, json={}).status_code == 401
    assert requests.post(url, json={}, cookies={"guanjia_sidebar": '{"u":"kefu_xiaomei"}'}).status_code == 401
    assert _refresh(http, sidebar_app, ["everything"]).status_code == 400
    with session_scope() as s:  # no longer staff: the cookie alone is not enough
        s.query(Staff).filter(Staff.userid == "kefu_xiaomei").update({"active": False})
    assert _refresh(http, sidebar_app).status_code == 403
    assert http.get(sidebar_app + "/sidebar/api/agent-config", params={"url": sidebar_app + "/sidebar"}
                    ).status_code == 403
    assert _fetches(fake_platform) == (1, 1)
    assert _tickets_used(sign_in(sidebar_app, fake_platform, "zhuguan_chen"), sidebar_app) == ("corp-1", "app-1")
