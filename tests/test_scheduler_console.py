"""The console's announcement page (issue 14): before sending it shows the
audience and its count for confirmation; after sending, why deliveries failed,
in words, with a retry. Flask test client, the real scheduler code, the fake
platform over HTTP."""
from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, select

from ground.clock import CST
from tests.console_support import csrf_of, PASSWORD, api  # noqa: F401


def _login(client, username: str = "supervisor"):
    client.post("/console/logout", data={"csrf": csrf_of(client, "/console/today")})
    assert client.post("/console/login", data={"csrf": csrf_of(client), "username": username, "password": PASSWORD}).status_code == 302


def _csrf(client) -> str:
    html = client.get("/console/announcements").get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _campaigns() -> list:
    from store.db import session_scope
    from store.models import Campaign

    with session_scope() as s:
        return [(c.id, c.target, c.emergency, c.state) for c in s.scalars(select(Campaign).order_by(Campaign.id))]


def test_audience_and_count_are_confirmed_before_anything_is_sent(api, frozen_clock):
    from store.db import session_scope
    from store.models import Owner

    frozen_clock.set(datetime(2026, 9, 15, 10, 10, tzinfo=CST))
    c = api.client
    _login(c)
    token = _csrf(c)
    with session_scope() as s:
        everyone = s.scalar(select(func.count()).select_from(Owner))
    r = c.post("/console/announcements", data={"csrf": token, "text": "本周六上午9点中心广场中秋游园会",
                                               "scope": "everyone", "when": "now"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "确认发送" in html
    assert re.search(r'id="ann-audience">全体业主<', html) and f'id="ann-count">{everyone}<' in html
    assert _campaigns() == []  # nothing yet
    r = c.post("/console/announcements", data={"csrf": token, "text": "1栋明天停水检修，请提前储水",
                                               "scope": "buildings", "buildings": "1栋", "when": "now"})
    html = r.get_data(as_text=True)
    assert 'id="ann-audience">1栋<' in html and 'id="ann-count">6<' in html
    assert "未勾选紧急" in html  # 停水 suggests urgency; the page says it is not an emergency
    # Confirmed: the form comes back with confirmed=1 and the same fields.
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    assert fields["confirmed"] == "1" and fields["buildings"] == "1栋"
    r = c.post("/console/announcements", data=fields)
    assert r.status_code == 302
    assert _campaigns() == [(1, {"buildings": ["1栋"]}, False, _campaigns()[0][3])]


def test_the_list_says_why_deliveries_failed_and_offers_a_retry(api, outbound_env, fake_platform, frozen_clock):
    from bot.campaigns import create_announcement, run_chunk
    from store.db import session_scope

    frozen_clock.set(datetime(2026, 9, 15, 10, 10, tzinfo=CST))
    fake_platform.fault("/cgi-bin/message/template/send", errcode=43004, times=2)
    with session_scope() as s:
        cid = create_announcement(s, "本周六亲子活动，欢迎参加。", {"buildings": ["1栋"]}, created_by="zhuguan_chen").id
    assert run_chunk(cid, max_seconds=20)["state"] == "done"
    c = api.client
    _login(c)
    html = c.get("/console/announcements").get_data(as_text=True)
    row = html[html.index(f'data-announcement="{cid}"'):]
    row = row[:row.index("</tr>")]
    assert "4/6" in row and "失败 2" in row and "业主已取消关注公众号 × 2" in row
    assert "重试失败的 2 条" in row
    r = c.post(f"/console/announcements/{cid}/retry", data={"csrf": _csrf(c)})
    assert r.status_code == 302
    assert "2 条失败的消息已重新发送" in c.get("/console/announcements").get_data(as_text=True)
    assert run_chunk(cid, max_seconds=20)["state"] == "done"
    row = c.get("/console/announcements").get_data(as_text=True)
    row = row[row.index(f'data-announcement="{cid}"'):]
    row = row[:row.index("</tr>")]
    assert "6/6" in row and "失败" not in row


def test_api_previews_the_audience_and_reports_failures(api, outbound_env, fake_platform, frozen_clock):
    r = api.post("/announcements/preview", role="supervisor", json={"target": {"buildings": ["1栋"]}})
    assert r.status_code == 200 and r.json["label"] == "1栋" and r.json["count"] == 6
    frozen_clock.set(datetime(2026, 9, 15, 10, 10, tzinfo=CST))
    fake_platform.fault("/cgi-bin/message/template/send", errcode=43004, times=1)
    r = api.post("/announcements", role="supervisor", json={"text": "周六亲子活动", "target": {"buildings": ["1栋"]}})
    assert r.status_code == 201 and r.json["emergency"] is False
    from bot.campaigns import run_chunk

    aid = r.json["id"]
    run_chunk(aid, max_seconds=20)
    r = api.get(f"/announcements/{aid}", role="staff")
    assert r.json["failures"] == {"业主已取消关注公众号": 1} and r.json["deliveries"] == {"sent": 5, "failed": 1}
    r = api.post(f"/announcements/{aid}/retry", role="supervisor")
    assert r.status_code == 200 and r.json["retried"] == 1


def test_the_list_shows_group_notices_waiting_for_the_owners_tap(api, outbound_env, fake_platform, frozen_clock):
    from bot.campaigns import create_announcement, run_chunk
    from store.db import session_scope

    frozen_clock.set(datetime(2026, 9, 15, 10, 10, tzinfo=CST))
    with session_scope() as s:
        cid = create_announcement(s, "中秋游园会通知", {"groups": ["wr_bld_2"]}, created_by="zhuguan_chen").id
    run_chunk(cid, max_seconds=20)
    c = api.client
    _login(c)
    html = c.get("/console/announcements").get_data(as_text=True)
    row = html[html.index(f'data-announcement="{cid}"'):]
    assert "0/1" in row[:row.index("</tr>")] and "待群主确认 1" in row[:row.index("</tr>")]
