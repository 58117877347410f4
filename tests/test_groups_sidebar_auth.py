"""/sidebar sign-in (WeCom OAuth2 through the fake platform) and the agentConfig signature,
over real HTTP: the app on loopback, the fake platform as its own process."""
from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlsplit

import requests

from tests.fixtures_platform import AGENT_ID, CORP_ID
from tests.sidebar_support import login_state, sidebar_app, sign_in, suggest  # noqa: F401  (fixture)


def test_no_session_redirects_to_the_authorize_page(sidebar_app, fake_platform):
    resp = requests.get(sidebar_app + "/sidebar?group=wr_vip_01&task=7", allow_redirects=False)
    assert resp.status_code == 302
    loc = resp.headers["Location"]
    assert loc.startswith(fake_platform.base_url + "/connect/oauth2/authorize?")
    assert loc.endswith("#wechat_redirect")
    q = parse_qs(urlsplit(loc.split("#")[0]).query)
    assert q["appid"] == [CORP_ID] and q["agentid"] == [AGENT_ID]
    assert q["redirect_uri"] == [sidebar_app + "/sidebar/auth"]
    assert q["response_type"] == ["code"] and q["scope"] == ["snsapi_base"] and len(q["state"][0]) >= 16
    # The parameter order WeCom documents.
    assert [k.split("=")[0] for k in urlsplit(loc.split("#")[0]).query.split("&")] == [
        "appid", "redirect_uri", "response_type", "scope", "state", "agentid"]
    # The APIs answer 401 rather than redirecting.
    ids = suggest(["x"])
    assert requests.post(f"{sidebar_app}/sidebar/api/sent/{ids[0]}", json={"group": "wr_vip_01"}).status_code == 401
    assert requests.get(sidebar_app + "/sidebar/api/agent-config", params={"url": sidebar_app + "/sidebar"}
                        ).status_code == 401
    # A forged cookie is no session.
    forged = requests.get(sidebar_app + "/sidebar", cookies={"guanjia_sidebar": '{"u":"kefu_xiaomei"}'},
                          allow_redirects=False)
    assert forged.status_code == 302


def test_code_exchange_gives_a_session_and_returns_to_the_page(sidebar_app, fake_platform):
    suggest(["游泳池每天 6:00-22:00 开放。"])
    fake_platform.config(oauth_codes={"code1": "kefu_xiaomei"})
    http = requests.Session()
    state = login_state(http, sidebar_app, "/sidebar?group=wr_vip_01&task=7")
    resp = http.get(sidebar_app + "/sidebar/auth", params={"code": "code1", "state": state}, allow_redirects=False)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/sidebar?group=wr_vip_01&task=7"
    cookie = next(c for c in http.cookies if c.name == "guanjia_sidebar")
    assert cookie.has_nonstandard_attr("HttpOnly") and "kefu_xiaomei" not in cookie.value.split(".")[-1]
    calls = fake_platform.sent("/cgi-bin/auth/getuserinfo")
    assert [c["query"] for c in calls] == [{"code": "code1"}]
    page = http.get(sidebar_app + resp.headers["Location"])
    assert page.status_code == 200 and "游泳池每天 6:00-22:00 开放。" in page.text

    # A code works once, as WeCom's do.
    other = requests.Session()
    state = login_state(other, sidebar_app)
    again = other.get(sidebar_app + "/sidebar/auth", params={"code": "code1", "state": state})
    assert again.status_code == 400 and "登录码无效" in again.text


def test_unknown_code_and_bad_state_give_an_error_page(sidebar_app, fake_platform):
    http = requests.Session()
    state = login_state(http, sidebar_app)
    resp = http.get(sidebar_app + "/sidebar/auth", params={"code": "nope", "state": state})
    assert resp.status_code == 400 and "登录码无效" in resp.text and "重新登录" in resp.text
    assert fake_platform.stats()["errors"].get("/cgi-bin/auth/getuserinfo:40029") == 1
    # A state this browser was not given (someone else's callback link): refused before any exchange.
    fake_platform.config(oauth_codes={"code2": "kefu_xiaomei"})
    stranger = requests.get(sidebar_app + "/sidebar/auth", params={"code": "code2", "state": state})
    assert stranger.status_code == 400 and "登录已过期" in stranger.text
    assert len(fake_platform.sent("/cgi-bin/auth/getuserinfo")) == 0
    # A WeCom member who is not in the staff table.
    fake_platform.config(oauth_codes={"code3": "somebody_else"})
    state = login_state(http, sidebar_app)
    resp = http.get(sidebar_app + "/sidebar/auth", params={"code": "code3", "state": state})
    assert resp.status_code == 403 and "仅供物业员工" in resp.text
    # WeCom down: a clear page, not a 500.
    fake_platform.config(oauth_codes={"code4": "kefu_xiaomei"})
    fake_platform.fault("/cgi-bin/auth/getuserinfo", status=503)
    state = login_state(http, sidebar_app)
    resp = http.get(sidebar_app + "/sidebar/auth", params={"code": "code4", "state": state})
    assert resp.status_code == 502 and "暂时无法访问" in resp.text


def test_only_own_groups_are_listed(sidebar_app, fake_platform):
    suggest(["VIP群的建议"], group="wr_vip_01")
    suggest(["2栋的建议"], group="wr_bld_2", staff="kefu_ajie")
    xiaomei = sign_in(sidebar_app, fake_platform, "kefu_xiaomei")
    page = xiaomei.get(sidebar_app + "/sidebar?group=wr_vip_01")
    assert "VIP群的建议" in page.text and "2栋的建议" not in page.text
    foreign = xiaomei.get(sidebar_app + "/sidebar?group=wr_bld_2")
    assert foreign.status_code == 403 and "2栋的建议" not in foreign.text

    ajie = sign_in(sidebar_app, fake_platform, "kefu_ajie")
    assert "2栋的建议" in ajie.get(sidebar_app + "/sidebar?group=wr_bld_2").text
    assert ajie.get(sidebar_app + "/sidebar?group=wr_vip_01").status_code == 403

    for lead in ("zhuguan_chen", "jingli_lin"):  # supervisor, manager: every group
        http = sign_in(sidebar_app, fake_platform, lead)
        assert "2栋的建议" in http.get(sidebar_app + "/sidebar?group=wr_bld_2").text
        assert "VIP群的建议" in http.get(sidebar_app + "/sidebar?group=wr_vip_01").text


def test_marking_another_staff_members_suggestion_is_refused(sidebar_app, fake_platform):
    from store.db import session_scope
    from store.models import AuditLog
    from store.models.groups import GroupSuggestion

    ids = suggest(["VIP群的建议一", "VIP群的建议二"], group="wr_vip_01")
    ajie = sign_in(sidebar_app, fake_platform, "kefu_ajie")
    resp = ajie.post(f"{sidebar_app}/sidebar/api/sent/{ids[0]}", json={"group": "wr_vip_01"})
    assert resp.status_code == 403
    xiaomei = sign_in(sidebar_app, fake_platform, "kefu_xiaomei")
    assert xiaomei.post(f"{sidebar_app}/sidebar/api/sent/{ids[0]}", json={"group": "wr_bld_2"}).status_code == 404
    assert xiaomei.post(f"{sidebar_app}/sidebar/api/sent/{ids[0]}", json={"group": "wr_vip_01"}).json()["state"] == "sent"
    chen = sign_in(sidebar_app, fake_platform, "zhuguan_chen")
    assert chen.post(f"{sidebar_app}/sidebar/api/sent/{ids[1]}", json={"group": "wr_vip_01"}).json()["state"] == "sent"
    with session_scope() as s:
        assert [s.get(GroupSuggestion, i).state for i in ids] == ["sent", "sent"]
        actors = [a.actor for a in s.query(AuditLog).filter(AuditLog.action == "group.suggestion.sent")
                  .order_by(AuditLog.id)]
        assert actors == ["kefu_xiaomei", "zhuguan_chen"]


def test_signature_known_vector():
    from bot.groups_web import agent_config_signature

    # The worked example of the WeChat/WeCom JS-SDK signature documentation.
    assert agent_config_signature(
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
        "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value",
    ) == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_agent_config_is_signed_with_the_ticket_and_the_ticket_is_cached(sidebar_app, fake_platform):
    fake_platform.config(agent_config_ticket="known-agent-ticket")
    http = sign_in(sidebar_app, fake_platform, "kefu_xiaomei")
    configs = []
    for page in ("/sidebar?group=wr_vip_01&task=7", "/sidebar"):  # two page loads
        url = sidebar_app + page
        resp = http.get(sidebar_app + "/sidebar/api/agent-config", params={"url": url + "#frag"})
        assert resp.status_code == 200, resp.text
        c = resp.json()
        plain = f"jsapi_ticket=known-agent-ticket&noncestr={c['nonceStr']}&timestamp={c['timestamp']}&url={url}"
        assert c["signature"] == hashlib.sha1(plain.encode()).hexdigest()
        assert c["corpid"] == CORP_ID and c["agentid"] == AGENT_ID and "sendChatMessage" in c["jsApiList"]
        configs.append(c)
    assert configs[0]["nonceStr"] != configs[1]["nonceStr"]
    calls = fake_platform.sent("/cgi-bin/ticket/get")
    assert [c["query"] for c in calls] == [{"type": "agent_config"}]

    # Cached in Redis, not in the process: a fresh client (another worker) does not ask again.
    from bot.outbound.clients import reset_clients

    reset_clients()
    assert http.get(sidebar_app + "/sidebar/api/agent-config", params={"url": sidebar_app + "/sidebar"}).ok
    assert len(fake_platform.sent("/cgi-bin/ticket/get")) == 1
    assert fake_platform.stats()["calls"]["/cgi-bin/ticket/get"] == 1

    # Only this app's sidebar URLs are signed.
    for bad in ("https://evil.example/sidebar", sidebar_app + "/console", "javascript:alert(1)"):
        assert http.get(sidebar_app + "/sidebar/api/agent-config", params={"url": bad}).status_code == 400


def test_no_ticket_is_a_clean_error(sidebar_app, fake_platform):
    http = sign_in(sidebar_app, fake_platform, "kefu_xiaomei")
    fake_platform.fault("/cgi-bin/ticket/get", errcode=-1)
    resp = http.get(sidebar_app + "/sidebar/api/agent-config", params={"url": sidebar_app + "/sidebar"})
    assert resp.status_code == 502 and resp.json() == {"error": "no jsapi ticket"}


def test_fake_platform_oauth_and_ticket_apis(outbound_env, fake_platform):
    import pytest

    from bot.outbound.clients import ApiError, get_wecom_client

    client = get_wecom_client()
    fake_platform.config(oauth_codes={"a": "kefu_xiaomei", "b": "kefu_ajie"})
    assert client.oauth_userinfo("a")["userid"] == "kefu_xiaomei"
    assert client.call("GET", "/cgi-bin/user/getuserinfo", params={"code": "b"})["userid"] == "kefu_ajie"  # older name
    for code in ("a", "never-issued"):
        with pytest.raises(ApiError) as err:
            client.oauth_userinfo(code)
        assert err.value.errcode == 40029
    with pytest.raises(ApiError):
        client.call("GET", "/cgi-bin/ticket/get")  # only type=agent_config is faked
    ticket = client.agent_config_ticket()
    assert ticket.startswith("fake-ticket-") and client.agent_config_ticket() == ticket
    assert len(fake_platform.sent("/cgi-bin/ticket/get")) == 1
    # The authorize page needs a member to sign in, and the parameters WeCom needs.
    page = requests.get(fake_platform.base_url + "/connect/oauth2/authorize", allow_redirects=False,
                        params={"appid": CORP_ID, "redirect_uri": "http://x/cb", "response_type": "code",
                                "scope": "snsapi_base", "state": "s1"})
    assert page.status_code == 400
    fake_platform.config(oauth_authorize_user="kefu_ajie")
    page = requests.get(fake_platform.base_url + "/connect/oauth2/authorize", allow_redirects=False,
                        params={"appid": CORP_ID, "redirect_uri": "http://x/cb", "response_type": "code",
                                "scope": "snsapi_base", "state": "s1"})
    q = parse_qs(urlsplit(page.headers["Location"]).query)
    assert page.status_code == 302 and q["state"] == ["s1"]
    assert client.oauth_userinfo(q["code"][0])["userid"] == "kefu_ajie"
