"""Console pages without a browser: every page respects the role, owner views
are logged, forms need the CSRF token, charts are inline SVG, the import page
checks before it imports, and `guanjia users add` creates a login."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from tests.console_support import csrf_of, ADMIN_TOKEN, PASSWORD, api, faq_copy, make_miss, make_ticket  # noqa: F401

PAGES = {  # path -> least role
    "/console/today": "staff", "/console/tickets": "staff", "/console/kb": "staff",
    "/console/satisfaction": "supervisor", "/console/announcements": "supervisor",
    "/console/owners": "manager", "/console/owners/import": "manager", "/console/roster": "staff",
    "/console/audit": "manager",
}
RANK = {"staff": 0, "supervisor": 1, "manager": 2}


def _login(client, username: str, password: str = PASSWORD):
    from tests.test_security_scope import login

    return login(client, username, password)  # through the form, with its CSRF token


def _csrf(client, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_pages_respect_roles(api, faq_copy):
    c = api.client
    for path in PAGES:
        r = c.get(path)
        assert r.status_code == 302 and "/console/login" in r.location
    for role in ("staff", "supervisor", "manager"):
        assert _login(c, role).status_code == 302
        for path, need in PAGES.items():
            r = c.get(path)
            expected = 200 if RANK[role] >= RANK[need] else 403
            assert r.status_code == expected, (role, path, r.status_code)
            if expected == 200:
                assert 'name="viewport"' in r.get_data(as_text=True)  # phone-ready
        c.post("/console/logout", data={"csrf": csrf_of(c, "/console/today")})


def test_login_failures_and_admin_token_login(api):
    c = api.client
    r = _login(c, "manager", "nope")
    assert r.status_code == 401 and "用户名或密码错误" in r.get_data(as_text=True)
    r = _login(c, "admin", ADMIN_TOKEN)
    assert r.status_code == 302
    assert c.get("/console/owners").status_code == 200
    # An open redirect through ?next= is not followed.
    r = c.post("/console/login", data={"username": "staff", "password": PASSWORD, "next": "https://evil.example/",
                                       "csrf": _csrf(c, "/console/login")})
    assert r.location.endswith("/console/today")


def test_disabling_a_user_ends_their_session(api):
    from store.db import session_scope
    from store.models import ConsoleUser

    c = api.client
    _login(c, "supervisor")
    assert c.get("/console/today").status_code == 200
    with session_scope() as s:
        s.scalar(select(ConsoleUser).where(ConsoleUser.username == "supervisor")).active = False
    assert c.get("/console/today").status_code == 302


def test_owner_pages_log_every_lookup(api):
    from store.db import session_scope
    from store.models import AuditLog

    c = api.client
    _login(c, "manager")
    html = c.get("/console/owners?q=王建国").get_data(as_text=True)
    oid = re.search(r'/console/owners/(\d+)', html).group(1)
    page = c.get(f"/console/owners/{oid}").get_data(as_text=True)
    assert "13800000001" in page and "1-0801" in page
    with session_scope() as s:
        rows = [(a.actor, a.action, a.target) for a in s.scalars(select(AuditLog).where(AuditLog.action.like("owner.%")))]
    assert rows == [("console:manager", "owner.search", "王建国"), ("console:manager", "owner.view", f"owner:{oid}")]
    page = c.get("/console/audit?action=owner.view").get_data(as_text=True)  # the manager can review them
    # In names: who (the console user's name), what, whose record; no raw ids.
    assert "测试manager" in page and "查看业主档案" in page and "业主 王建国（1-0801）" in page
    assert f"owner:{oid}" not in page and "console:manager" not in page


def test_forms_need_the_csrf_token(api):
    from store.db import session_scope

    with session_scope() as s:
        tid = make_ticket(s, assignee="weixiu_laozhou", state="accepted").id
    c = api.client
    _login(c, "supervisor")
    r = c.post(f"/console/tickets/{tid}/reassign", data={"assignee": "weixiu_xiaoli"})
    assert r.status_code == 400
    token = _csrf(c, f"/console/tickets/{tid}")
    r = c.post(f"/console/tickets/{tid}/reassign", data={"assignee": "weixiu_xiaoli", "csrf": token})
    assert r.status_code == 302
    assert "小李" in c.get(f"/console/tickets/{tid}").get_data(as_text=True)


def test_staff_see_tickets_but_cannot_reassign(api):
    from store.db import session_scope

    with session_scope() as s:
        tid = make_ticket(s, assignee="weixiu_laozhou", state="accepted").id
    c = api.client
    _login(c, "staff")
    html = c.get(f"/console/tickets/{tid}").get_data(as_text=True)
    assert "reassign-form" not in html
    r = c.post(f"/console/tickets/{tid}/reassign", data={"assignee": "weixiu_xiaoli"})
    assert r.status_code == 403


def test_today_shows_clock_colours_and_waiting_work(api, frozen_clock, faq_copy):
    from datetime import timedelta

    from ground import clock
    from store.db import session_scope
    from store.models import Owner
    from store.models.groups import ModerationCase
    from store.models.membership import Booking

    with session_scope() as s:
        red = make_ticket(s, minutes_ago=20).id                      # 15 min clock: broken
        amber = make_ticket(s, minutes_ago=12).id                    # warned 5 min before: about to break
        green = make_ticket(s, minutes_ago=1, priority="general", clock_minutes=600).id
        li = s.scalar(select(Owner).where(Owner.openid == "o_li"))
        now = clock.now()
        s.add(Booking(owner_id=li.id, service="housekeeping", day=now.date(), start_at=now + timedelta(days=1),
                      end_at=now + timedelta(days=1, hours=2), location="1-1201", tier="银卡",
                      team="customer_service", state="requested"))
        s.add(ModerationCase(group_chat_id="wr_vip_01", member_id="wm_zhang", violation="ad", step="warn"))
        make_miss(s, "快递柜坏了找谁")
        from store.models.groups import GroupSuggestion

        make_ticket(s, assignee="kefu_xiaomei", state="accepted", content="邻居装修噪音")
        s.add(GroupSuggestion(group_chat_id="wr_bld_1", staff_userid="kefu_xiaomei", text="您好，停车场开放时间为6:00-23:00。"))
    c = api.client
    _login(c, "staff")  # linked to kefu_xiaomei, the staff admin of the building groups
    html = c.get("/console/today").get_data(as_text=True)
    mine = html.split('id="today-mine"')[1].split("</section>")[0]
    assert "邻居装修噪音" in mine and "停车场开放时间" in mine and "水管" not in mine
    assert re.search(rf'class="ticket red" href="/console/tickets/{red}"', html)
    assert re.search(rf'class="ticket amber" href="/console/tickets/{amber}"', html)
    assert re.search(rf'class="ticket green" href="/console/tickets/{green}"', html)
    assert "家政保洁" in html and "housekeeping" not in html and "1-1201" in html
    assert "尊享业主VIP群" in html and "1-1502 张伟" in html and "广告 → 警告" in html
    assert "快递柜坏了找谁" in html


def test_satisfaction_charts_are_inline_svg(api):
    from datetime import datetime

    from ground.clock import CST
    from store.db import session_scope
    from store.models import Owner
    from store.models.campaigns import SurveyAnswer

    with session_scope() as s:
        for month, score in ((7, 3), (8, 4), (9, 5)):
            t = make_ticket(s, state="closed", now=datetime(2026, month, 10, 10, tzinfo=CST))
            t.survey_score, t.completed_at = score, datetime(2026, month, 10, 12, tzinfo=CST)
        ids = [o.id for o in s.scalars(select(Owner))]
        for i, (period, score) in enumerate((("2026Q2", 4), ("2026Q3", 5))):
            s.add(SurveyAnswer(survey="satisfaction", period=period, owner_id=ids[i], building_code="1栋",
                               tier="金卡", score=score))
    c = api.client
    _login(c, "supervisor")
    for by in ("building", "tier", "category"):
        html = c.get(f"/console/satisfaction?by={by}").get_data(as_text=True)
        # No chart library fetched from outside: no src/href naming a CDN (not "cdn" anywhere:
        # a random CSRF token once held those three letters and failed CI at 013aeff).
        assert html.count("<svg") >= 2 and "<script src=\"http" not in html
        assert not re.search(r"""(?:src|href)=["'][^"']*cdn""", html, re.I), html
    html = c.get("/console/satisfaction?by=building").get_data(as_text=True)
    assert "2026-07" in html and "2026Q3" in html and "<polyline" in html and "<rect" in html
    r = api.get("/surveys/results?source=tickets&by=category", role="supervisor")
    assert r.json["series"][0]["points"][-1] == {"period": "2026-09", "avg": 5.0, "n": 1}


def test_import_page_checks_then_imports(api):
    from store.db import session_scope
    from store.models import Owner

    c = api.client
    _login(c, "manager")
    token = _csrf(c, "/console/owners/import")
    bad = "room,name,phone\n1-3001,周到,123\n"
    html = c.post("/console/owners/import", content_type="multipart/form-data",
                  data={"csrf": token, "mode": "import", "file": (io.BytesIO(bad.encode()), "o.csv")}).get_data(as_text=True)
    assert "未导入任何数据" in html and "phone" in html
    good = "room,name,phone\n1-3001,周到,13800000123\n"
    html = c.post("/console/owners/import", content_type="multipart/form-data",
                  data={"csrf": token, "mode": "check", "file": (io.BytesIO(good.encode()), "o.csv")}).get_data(as_text=True)
    assert "检查通过" in html
    with session_scope() as s:
        assert s.scalar(select(Owner).where(Owner.name == "周到")) is None
    html = c.post("/console/owners/import", content_type="multipart/form-data",
                  data={"csrf": token, "mode": "import", "file": (io.BytesIO(good.encode()), "o.csv")}).get_data(as_text=True)
    assert "已导入" in html
    with session_scope() as s:
        assert s.scalar(select(Owner).where(Owner.name == "周到")).room == "1-3001"


def test_cli_users_add(demo):
    from click.testing import CliRunner

    from bot.cli import main
    from store.db import session_scope
    from store.models import ConsoleUser

    runner = CliRunner()
    r = runner.invoke(main, ["users", "add", "lin", "--name", "林经理", "--role", "manager", "--staff", "jingli_lin",
                             "--password", "a-long-password", "--token"])
    assert r.exit_code == 0, r.output
    assert "api token (shown once): gj_" in r.output
    r = runner.invoke(main, ["users", "add", "lin", "--password", "a-long-password"])
    assert r.exit_code == 2 and "taken" in r.output
    r = runner.invoke(main, ["users", "add", "x", "--password", "short"])
    assert r.exit_code == 2 and "password" in r.output
    r = runner.invoke(main, ["users", "list"])
    assert "lin" in r.output and "manager" in r.output
    with session_scope() as s:
        u = s.scalar(select(ConsoleUser).where(ConsoleUser.username == "lin"))
        assert u.role == "manager" and u.staff_id is not None and u.password_hash != "a-long-password"


def test_login_is_throttled_after_repeated_failures(api):
    c = api.client
    for _ in range(5):
        assert _login(c, "staff", "wrong").status_code == 401
    r = _login(c, "staff", PASSWORD)  # even the right password waits now
    assert r.status_code == 429
    assert _login(c, "manager", PASSWORD).status_code == 302  # other names are not affected


def test_bookings_and_applications_decided_from_today(api):
    from datetime import timedelta

    from ground import clock
    from store.db import session_scope
    from store.models import Owner, OutboxMessage
    from store.models.membership import Booking, MemberApplication

    with session_scope() as s:
        li = s.scalar(select(Owner).where(Owner.openid == "o_li"))
        now = clock.now()
        b = Booking(owner_id=li.id, service="housekeeping", day=(now + timedelta(days=1)).date(),
                    start_at=now + timedelta(days=1), end_at=now + timedelta(days=1, hours=2), location="1-1201",
                    tier="银卡", team="customer_service", state="requested")
        a = MemberApplication(owner_id=li.id, from_tier="银卡", target_tier="金卡", basis="spend")
        s.add_all([b, a])
        s.flush()
        bid, aid = b.id, a.id
    c = api.client
    _login(c, "staff")
    html = c.get("/console/today").get_data(as_text=True)
    assert f"/console/bookings/{bid}/approve" in html and f"/console/applications/{aid}/approve" not in html
    token = _csrf(c, "/console/today")
    assert c.post(f"/console/applications/{aid}/approve", data={"csrf": token}).status_code == 403
    assert c.post(f"/console/bookings/{bid}/approve", data={"csrf": token}).status_code == 302
    _login(c, "supervisor")
    token = _csrf(c, "/console/today")
    assert c.post(f"/console/applications/{aid}/approve", data={"csrf": token}).status_code == 302
    with session_scope() as s:
        assert s.get(Booking, bid).state == "approved"
        assert s.get(MemberApplication, aid).state == "approved"
        assert s.scalar(select(Owner).where(Owner.openid == "o_li")).tier == "金卡"
        assert s.scalar(select(OutboxMessage).where(OutboxMessage.recipient == "o_li")) is not None
    # Deciding twice is refused with the capability's reason.
    html = c.post(f"/console/applications/{aid}/reject", data={"csrf": token}, follow_redirects=True).get_data(as_text=True)
    assert "already approved" in html


def test_staff_admin_settles_a_moderation_card(api):
    from store.db import session_scope
    from store.models import AuditLog
    from store.models.groups import ModerationCase

    with session_scope() as s:
        mine = ModerationCase(group_chat_id="wr_bld_1", member_id="wm_liu", violation="ad", step="warn")
        other = ModerationCase(group_chat_id="wr_bld_2", member_id="wm_wu", violation="ad", step="warn")
        s.add_all([mine, other])
        s.flush()
        mine_id, other_id = mine.id, other.id
    c = api.client
    _login(c, "staff")  # 小美 administers the 1栋 group, not the 2栋 one
    token = _csrf(c, "/console/today")
    assert c.post(f"/console/strikes/{other_id}/fp", data={"csrf": token}).status_code == 403
    assert c.post(f"/console/strikes/{mine_id}/fp", data={"csrf": token}).status_code == 302
    with session_scope() as s:
        assert s.get(ModerationCase, mine_id).status == "reversed"
        assert s.get(ModerationCase, other_id).status == "open"
        assert s.scalar(select(AuditLog).where(AuditLog.action == "moderation.reverse")).actor == "kefu_xiaomei"


def test_a_supervisor_answers_a_miss_from_the_kb_page(api, faq_copy):
    from store.db import session_scope
    from store.models import AuditLog
    from store.models.faq import FaqMiss

    with session_scope() as s:
        mid = make_miss(s, "小区里能放风筝吗").id
        other = make_miss(s, "小区里能放风筝吗").id  # the same words asked again
    c = api.client
    _login(c, "supervisor")
    token = _csrf(c, "/console/kb")
    html = c.post("/console/kb/misses/999999/phrasing", data={"csrf": token, "entry_id": "prohibited-acts"},
                  follow_redirects=True).get_data(as_text=True)
    assert "没有这条未回答的问题" in html
    r = c.post(f"/console/kb/misses/{mid}/phrasing", data={"csrf": token, "entry_id": "no-such-entry"})
    assert r.status_code == 302 and r.location.endswith(f"#miss-{mid}")
    assert "未保存" in c.get("/console/kb").get_data(as_text=True)
    html = c.post(f"/console/kb/misses/{mid}/phrasing", data={"csrf": token, "entry_id": "prohibited-acts"},
                  follow_redirects=True).get_data(as_text=True)
    assert "已把「小区里能放风筝吗」加入 prohibited-acts" in html and "2 条未回答问题已标记解决" in html
    with session_scope() as s:
        assert s.get(FaqMiss, mid).resolved and s.get(FaqMiss, other).resolved
        row = s.scalar(select(AuditLog).where(AuditLog.action == "faq.add_phrasing"))
        assert row.target == "faq:prohibited-acts" and row.detail["miss"] == mid and row.detail["file"]
