"""Building scope and phone masking (issue 13, items 7, 8, 10): one rule
(handlers/scope.py) in the console, the API and the WeCom commands; staff see
owners' numbers masked and reveal them on purpose, logged; owner search
treats % and _ literally."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.console_support import PASSWORD, api, make_ticket  # noqa: F401

OWNER_PHONE = "13800000002"  # 李秀英, 1-1201 (demo)
NEIGHBOUR = "13912345678"


def login(client, username: str, password: str = PASSWORD):
    """Sign in through the form, with its CSRF token when the form has one."""
    client.post("/console/logout", data={"csrf": _csrf_of(client, "/console/login")})
    return client.post("/console/login", data={"username": username, "password": password,
                                               "csrf": _csrf_of(client, "/console/login")})


def _csrf_of(client, path: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', client.get(path).get_data(as_text=True))
    return m.group(1) if m else ""


@pytest.fixture
def world(api):
    """Tickets in both buildings and teams; an extra staff login for 2栋 and a repair supervisor."""
    from bot.console.auth import create_user, issue_token
    from store.db import session_scope
    from store.models import Staff

    with session_scope() as s:
        s.add(Staff(userid="weixiu_boss", name="维修主管", team="repair", role="supervisor"))
        s.flush()
        for username, userid, role in (("staff2", "kefu_ajie", "staff"), ("repairboss", "weixiu_boss", "supervisor")):
            user = create_user(s, username, username, role, PASSWORD, userid, hash_method="pbkdf2:sha256:1000")
            api.tokens[username] = issue_token(s, user, "test")
        a = make_ticket(s, room="1-1201", content=f"厨房漏水，邻居说可以打{NEIGHBOUR}")
        a.contact_name, a.contact_phone, a.owner_id = "李秀英", OWNER_PHONE, 2
        from store.models.tickets import TicketEvent

        s.add(TicketEvent(ticket_id=a.id, at=a.created_at, actor="bot", action="progress",
                          detail={"contact": OWNER_PHONE, "note": f"邻居 {NEIGHBOUR}"}))
        b = make_ticket(s, room="2-1002", content="2栋电梯异响")
        b.building = "2栋"
        c = make_ticket(s, room="2-1301", content="2栋楼道灯坏了", assignee="kefu_xiaomei", state="accepted")
        c.building = "2栋"
        e = make_ticket(s, room="2-1603", content="投诉保安态度")
        e.building, e.team, e.kind = "2栋", "customer_service", "complaint"
        ids = {"a": a.id, "b": b.id, "c": c.id, "e": e.id}
    return ids


def _api_ids(api, role: str) -> set[int]:
    r = api.get("/tickets?limit=500", role=role)
    assert r.status_code == 200, r.get_json()
    return {t["id"] for t in r.get_json()["tickets"]}


def test_api_lists_only_the_callers_scope(api, world):
    w = world
    assert _api_ids(api, "staff") == {w["a"], w["c"]}  # 小美: 1栋's group, and what is hers
    assert _api_ids(api, "staff2") == {w["b"], w["c"], w["e"]}  # 阿杰: 2栋's group
    assert _api_ids(api, "repairboss") == {w["a"], w["b"], w["c"]}  # repair department, no complaint
    assert _api_ids(api, "manager") == set(w.values())
    assert _api_ids(api, "admin") == set(w.values())
    assert api.get(f"/tickets/{w['b']}", role="staff").status_code == 404
    assert api.get(f"/tickets/{w['b']}", role="staff2").status_code == 200
    r = api.post(f"/tickets/{w['e']}/reassign", role="repairboss", json={"assignee": "weixiu_xiaoli"})
    assert r.status_code == 404


def test_console_shows_only_the_callers_scope(api, world):
    c = api.client
    assert login(c, "staff").status_code == 302
    page = c.get("/console/tickets?state=").get_data(as_text=True)
    assert f"T{world['a']}" in page and f"T{world['b']}<" not in page and "2栋电梯异响" not in page
    assert c.get(f"/console/tickets/{world['b']}").status_code == 404
    assert "2栋电梯异响" not in c.get("/console/today").get_data(as_text=True)
    assert login(c, "staff2").status_code == 302
    assert "2栋电梯异响" in c.get("/console/tickets?state=").get_data(as_text=True)
    assert c.get(f"/console/tickets/{world['a']}").status_code == 404


def _wecom(text: str, sender: str) -> str:
    from ground import clock
    from handlers.dispatch import handle
    from handlers.message import Context, Message
    from store.db import session_scope

    with session_scope() as s:
        out = handle(Context(s, clock.now()), Message(channel="wecom", sender=sender, kind="text", text=text,
                                                      chat="staff", msg_id="x"))
        return "\n".join(out.replies) + "\n".join(str(p.payload) for p in out.pushes)


def test_wecom_commands_follow_the_same_rule(api, world):
    b = world["b"]
    assert "不在您负责的范围" in _wecom(f"接单 T{b}", "kefu_xiaomei")  # 1栋's admin, a 2栋 ticket
    assert "不在您负责的范围" in _wecom(f"回访 T{b} 已回访", "kefu_xiaomei")
    assert "不在您负责的范围" in _wecom(f"接管 T{world['e']}", "weixiu_boss")  # a complaint: not repair's
    assert "您已接单" in _wecom(f"接单 T{b}", "kefu_ajie")  # 2栋's admin
    # the supervisor's department (customer service covers the request teams), the manager everything
    assert "不在您负责的范围" not in _wecom(f"接管 T{b}", "zhuguan_chen")
    assert "不在您负责的范围" not in _wecom(f"转派 T{world['e']} 小李", "jingli_lin")
    assert "没有找到工单" in _wecom("进度 T" + "9" * 5000 + " x", "kefu_ajie")
    # 「我的工单」 in WeCom: numbers in a ticket's text reach staff masked, even cut short
    from store.db import session_scope
    from store.models.tickets import Ticket

    with session_scope() as s:
        s.get(Ticket, world["a"]).assignee, s.get(Ticket, world["a"]).state = "kefu_xiaomei", "accepted"
    mine = _wecom("我的工单", "kefu_xiaomei")
    assert f"T{world['a']}" in mine and "139123" not in mine


def _group_command(text: str, sender: str, group: str) -> str:
    from ground import clock
    from handlers.dispatch import handle
    from handlers.message import Context, Message
    from store.db import session_scope

    with session_scope() as s:
        out = handle(Context(s, clock.now()), Message(channel="wecom", sender=sender, kind="text", text=text,
                                                      chat="building", group_id=group, msg_id=f"g-{sender}"))
        return "\n".join(out.replies) + "".join(str(p.payload) for p in out.pushes)


def test_group_ticket_command_is_scoped(api, world):
    # 小美 administers the 1栋 group: a 2栋 ticket reads as missing; 阿杰 (2栋) sees it
    text = _group_command(f"/工单 T{world['b']}", "kefu_xiaomei", "wr_bld_1")
    assert "电梯" not in text and "没有找到工单" in text
    assert "电梯" in _group_command(f"/工单 T{world['b']}", "kefu_ajie", "wr_bld_2")


def test_bookings_and_applications_follow_the_owner_scope(api, world):
    from datetime import timedelta

    from ground import clock
    from store.db import session_scope
    from store.models import Owner
    from store.models.membership import Booking, MemberApplication

    now = clock.now()
    with session_scope() as s:
        for openid in ("o_li", "o_huang"):  # 1-1201 (1栋) and 2-1002 (2栋)
            o = s.query(Owner).filter_by(openid=openid).one()
            s.add(Booking(owner_id=o.id, service="housekeeping", day=now.date(), start_at=now + timedelta(days=1),
                          end_at=now + timedelta(days=1, hours=2), location=o.room, tier="银卡",
                          team="customer_service", state="requested"))
            s.add(MemberApplication(owner_id=o.id, from_tier="银卡", target_tier="金卡", basis="spend"))
    rooms = lambda role, what: sorted(x["room"] for x in api.get(f"/{what}", role=role).get_json()[what])  # noqa: E731
    assert rooms("staff", "bookings") == ["1-1201"] and rooms("staff2", "bookings") == ["2-1002"]
    assert rooms("manager", "bookings") == ["1-1201", "2-1002"]
    assert rooms("staff", "applications") == ["1-1201"]
    c = api.client
    assert login(c, "staff").status_code == 302
    today = c.get("/console/today").get_data(as_text=True)
    assert "1-1201" in today and "2-1002" not in today


# --- item 8: masked numbers, a logged reveal -------------------------------------------------

def test_staff_see_masked_numbers_in_the_api(api, world):
    r = api.get(f"/tickets/{world['a']}", role="staff")
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and OWNER_PHONE not in body and NEIGHBOUR not in body
    assert "138****0002" in body and "139****5678" in body
    assert OWNER_PHONE in api.get(f"/tickets/{world['a']}", role="manager").get_data(as_text=True)
    listing = api.get("/tickets?limit=500", role="supervisor").get_data(as_text=True)
    assert NEIGHBOUR not in listing
    # The API's reveal: the department's supervisor gets the number, logged; the repair
    # supervisor does not see the complaint at all.
    r = api.post(f"/tickets/{world['a']}/contact", role="supervisor")
    assert r.status_code == 200 and r.get_json()["contact_phone"] == OWNER_PHONE
    assert api.post(f"/tickets/{world['e']}/contact", role="repairboss").status_code == 404
    assert api.post(f"/tickets/{world['a']}/contact", role="staff").status_code == 403
    audit = api.get("/audit?action=phone.reveal", role="manager").get_json()["entries"]
    assert [(e["actor"], e["target"]) for e in audit] == [("api:supervisor", f"ticket:{world['a']}")]


def test_staff_see_masked_numbers_in_the_console_and_reveal_is_checked_and_logged(api, world):
    from store.db import session_scope
    from store.models import AuditLog
    from store.models.tickets import Ticket

    c = api.client
    assert login(c, "staff").status_code == 302
    page = c.get(f"/console/tickets/{world['a']}").get_data(as_text=True)
    assert OWNER_PHONE not in page and NEIGHBOUR not in page and "138****0002" in page
    # the history (sentences now, not `contact=...`) carries no full number either
    assert OWNER_PHONE not in page.split('id="ticket-events"')[-1]
    csrf = _csrf_of(c, f"/console/tickets/{world['a']}")
    # 小美 does not hold T(a): no reveal for her
    r = c.post(f"/console/tickets/{world['a']}/contact", data={"csrf": csrf})
    assert r.status_code == 403 and OWNER_PHONE not in r.get_data(as_text=True)
    with session_scope() as s:
        s.get(Ticket, world["a"]).assignee = "kefu_xiaomei"
    assert 'id="reveal-phone"' in c.get(f"/console/tickets/{world['a']}").get_data(as_text=True)
    r = c.post(f"/console/tickets/{world['a']}/contact", data={"csrf": csrf})
    assert r.status_code == 200 and OWNER_PHONE in r.get_data(as_text=True)
    assert c.post(f"/console/tickets/{world['a']}/contact", data={}).status_code == 400  # CSRF still checked
    with session_scope() as s:
        rows = [(a.actor, a.action, a.target) for a in s.scalars(
            select(AuditLog).where(AuditLog.action.like("phone.%")).order_by(AuditLog.id))]
    assert rows == [("console:staff", "phone.reveal_refused", f"ticket:{world['a']}"),
                    ("console:staff", "phone.reveal", f"ticket:{world['a']}")]
    # the manager sees the number without a reveal
    assert login(c, "manager").status_code == 302
    assert OWNER_PHONE in c.get(f"/console/tickets/{world['a']}").get_data(as_text=True)


# --- item 10: LIKE wildcards ------------------------------------------------------------------

@pytest.mark.parametrize("q", ["%", "_", "%%", "\\", "1_1"])
def test_owner_search_wildcards_match_only_themselves(api, q):
    r = api.get(f"/owners?q={q}", role="manager")
    assert r.status_code == 200 and r.get_json()["owners"] == [], q


def test_owner_search_still_finds_fragments(api):
    r = api.get("/owners?q=1-12", role="manager")
    assert [o["name"] for o in r.get_json()["owners"]] == ["李秀英"]
    c = api.client
    assert login(c, "manager").status_code == 302
    page = c.get("/console/owners?q=%25").get_data(as_text=True)
    assert "李秀英" not in page and "王建国" not in page
    assert "李秀英" in c.get("/console/owners?q=秀").get_data(as_text=True)


def test_ticket_text_search_wildcards_are_literal(api, world):
    r = api.get("/tickets?q=%25&limit=500", role="manager")
    assert r.get_json()["tickets"] == []
