"""Building scope beyond tickets (issue 13, item 7): the same rule (handlers/scope.py)
for the Today page's moderation list and consultations, the moderation decisions,
`/api/v1/strikes` and `/api/v1/groups`, the consultation inbox (console, API,
WeCom), booking decisions and the bookings export. Staff sign in through the
console form with its CSRF token; the owner's question comes through the webhook."""
from __future__ import annotations

import io
from itertools import count

import pytest
from sqlalchemy import select

from tests import platform as P
from tests.console_support import csrf_of, api  # noqa: F401
from tests.test_security_scope import login, world  # noqa: F401

_ids = count(962001)


@pytest.fixture
def cases(api, world):
    """One open moderation case in each building's group (written as the ladder writes them)."""
    from store.db import session_scope
    from store.models.groups import ModerationCase

    with session_scope() as s:
        ids = {}
        for chat, member in (("wr_bld_1", "wm_liu"), ("wr_bld_2", "wm_sun")):
            c = ModerationCase(group_chat_id=chat, member_id=member, violation="ad", step="warn", why="ad: 微商",
                               evidence="加我微信买面膜", status="open")
            s.add(c)
            s.flush()
            ids[chat] = c.id
    return ids


def test_today_moderation_list_and_decisions_follow_the_building(api, world, cases):
    c = api.client
    assert login(c, "staff").status_code == 302  # 小美: the VIP group and 1栋's
    today = c.get("/console/today").get_data(as_text=True)
    section = today.split('id="today-moderation"')[1]
    assert "1栋业主群" in section and "2栋业主群" not in section and "孙浩" not in section
    # a decision on 2栋's case from 小美's sign-in is refused and changes nothing
    r = c.post(f"/console/strikes/{cases['wr_bld_2']}/done", data={"csrf": csrf_of(c, "/console/today")})
    assert r.status_code == 403
    from store.db import session_scope
    from store.models.groups import ModerationCase

    with session_scope() as s:
        assert s.get(ModerationCase, cases["wr_bld_2"]).status == "open"
    assert login(c, "staff2").status_code == 302  # 阿杰: 2栋
    section = c.get("/console/today").get_data(as_text=True).split('id="today-moderation"')[1]
    assert "2栋业主群" in section and "1栋业主群" not in section
    c.post(f"/console/strikes/{cases['wr_bld_2']}/done", data={"csrf": csrf_of(c, "/console/today")})
    with session_scope() as s:
        assert s.get(ModerationCase, cases["wr_bld_2"]).status == "done"


def test_strikes_and_groups_api_follow_the_department(api, world, cases):
    def chats(role: str, what: str = "strikes", key: str = "group_chat_id") -> set[str]:
        r = api.get(f"/{what}", role=role)
        assert r.status_code == 200, r.get_json()
        return {x[key] for x in r.get_json()[what]}

    # the customer-service supervisor (the department that runs the owners' groups) and managers: all
    assert chats("supervisor") == {"wr_bld_1", "wr_bld_2"} == chats("manager")
    # the repair supervisor runs no group: none of their cases, none of the groups
    assert chats("repairboss") == set()
    assert chats("repairboss", "groups", "chat_id") == set()
    assert chats("supervisor", "groups", "chat_id") >= {"wr_vip_01", "wr_bld_1", "wr_bld_2"}
    r = api.post(f"/strikes/{cases['wr_bld_1']}/decide", role="repairboss", json={"decision": "fp"})
    assert r.status_code == 404
    assert api.post(f"/strikes/{cases['wr_bld_1']}/decide", role="supervisor", json={"decision": "fp"}).status_code == 200


def _owner_asks(client, openid: str, text: str) -> None:
    q, body = P.mp_text_request(openid, text, msg_id=next(_ids))
    assert client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    P.drain_queues()


def _staff_says(client, userid: str, text: str) -> list[str]:
    from bot.devtools import fake_platform  # noqa: F401  (the fake records what the app chat got)

    q, body = P.wecom_text_request(userid, text, msg_id=next(_ids))
    assert client.post("/wecom/app", query_string=q, data=body).status_code == 200
    P.drain_queues()


def test_consultations_follow_the_owners_building(api, world, app_client, fake_platform, frozen_clock):
    from store.db import session_scope
    from store.models import Consultation

    # 黄磊 (2-1002, 银卡): his consultation goes to 2栋's dedicated agent 阿杰
    _owner_asks(app_client, "o_huang", "请问小区附近有没有好的钢琴老师推荐")
    with session_scope() as s:
        case = s.scalars(select(Consultation)).one()
        cid, recipients = case.id, case.recipients
    assert recipients == "kefu_ajie"
    c = api.client
    assert login(c, "staff").status_code == 302  # 小美, 1栋
    assert f"C{cid}" not in c.get("/console/consultations/").get_data(as_text=True)
    assert f"C{cid}" not in c.get("/console/today").get_data(as_text=True)
    assert c.get(f"/console/consultations/{cid}").status_code == 404
    r = c.post(f"/console/consultations/{cid}/reply", data={"csrf": csrf_of(c, "/console/today"), "text": "您好"})
    assert r.status_code == 404
    assert api.get("/consultations", role="staff").get_json()["consultations"] == []
    assert api.get(f"/consultations/{cid}", role="staff").status_code == 404
    assert api.post(f"/consultations/{cid}/reply", role="staff", json={"text": "您好"}).status_code == 404
    # WeCom: 小美's 「回复 C1 ...」 reads as missing; nothing reaches the owner
    fake_platform.clear()
    _staff_says(app_client, "kefu_xiaomei", f"回复 C{cid} 您好，我帮您问问")
    assert not [x for x in fake_platform.sent("/cgi-bin/message/custom/send") if x["json"]["touser"] == "o_huang"]
    assert any("没有找到这条咨询" in x["json"]["text"]["content"] for x in fake_platform.sent("/cgi-bin/message/send")
               if x["json"].get("msgtype") == "text")
    # 阿杰 (2栋) sees it on Today with the clock in words and who holds it, and answers it
    assert login(c, "staff2").status_code == 302
    today = c.get("/console/today").get_data(as_text=True).split('id="today-consultations"')[1]
    assert f"C{cid}" in today and "钢琴老师" in today and "首次回复 剩余10分钟" in today and "待接手" in today
    assert [x["id"] for x in api.get("/consultations", role="staff2").get_json()["consultations"]] == [cid]
    assert [x["id"] for x in api.get("/consultations", role="supervisor").get_json()["consultations"]] == [cid]


def test_booking_decisions_and_export_follow_the_owner_scope(api, world):
    from datetime import timedelta

    from openpyxl import load_workbook

    from ground import clock
    from store.db import session_scope
    from store.models import Owner
    from store.models.membership import Booking

    now = clock.now()
    with session_scope() as s:
        ids = {}
        for openid in ("o_li", "o_huang"):  # 1栋, 2栋
            o = s.query(Owner).filter_by(openid=openid).one()
            b = Booking(owner_id=o.id, service="housekeeping", day=now.date(), start_at=now + timedelta(days=1),
                        end_at=now + timedelta(days=1, hours=2), location=o.room, tier="银卡",
                        team="customer_service", state="requested")
            s.add(b)
            s.flush()
            ids[openid] = b.id
    c = api.client
    assert login(c, "staff").status_code == 302
    c.post(f"/console/bookings/{ids['o_huang']}/approve", data={"csrf": csrf_of(c, "/console/today")})
    with session_scope() as s:
        assert s.get(Booking, ids["o_huang"]).state == "requested"  # 2栋's: not 小美's to decide
    assert api.post(f"/bookings/{ids['o_huang']}/action", role="staff", json={"action": "approve"}).status_code == 404
    # the repair supervisor's export lists the bookings of owners in their scope only
    assert login(c, "repairboss").status_code == 302
    r = c.get("/console/export/bookings.xlsx")
    assert r.status_code == 200
    rows = [[c.value for c in row] for row in load_workbook(io.BytesIO(r.data))["预约"].iter_rows(min_row=2)]
    assert not any("2-1002" in str(v) for row in rows for v in row)
