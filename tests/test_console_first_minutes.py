"""The first minutes with the product (issue 14): `/` leads to the console, the
start-up banner says where it is and prints the demo manager's password once,
an install without channels says so once instead of a warning per message,
and the Excel exports carry the console's words and local times."""
from __future__ import annotations

import io
import logging
import re
from datetime import timedelta

from sqlalchemy import select

from tests.console_support import csrf_of, PASSWORD, api, make_miss, make_ticket  # noqa: F401


def test_root_leads_to_the_console_sign_in(api):
    r = api.client.get("/")
    assert r.status_code == 302 and r.location.endswith("/console/")
    r = api.client.get("/console/", follow_redirects=True)
    assert r.status_code == 200 and 'id="login-btn"' in r.get_data(as_text=True)


def test_banner_and_demo_manager_sign_in_once(demo):
    from bot.demo import DEMO_MANAGER, ensure_demo_manager
    from bot.runall import banner
    from bot.web import create_app
    from store.db import session_scope
    from store.models import ConsoleUser

    password = ensure_demo_manager()  # a fresh demo install: nobody has a console login yet
    assert password and ensure_demo_manager() is None  # printed at the first start only
    text = banner(8000, password)
    assert "http://127.0.0.1:8000/console/" in text and password in text and DEMO_MANAGER in text
    assert "not configured" in text  # the test settings configure no channel
    assert password not in banner(8000, None)
    with session_scope() as s:
        user = s.scalar(select(ConsoleUser).where(ConsoleUser.username == DEMO_MANAGER))
        assert user.role == "manager" and password not in user.password_hash  # kept hashed
    c = create_app().test_client()
    r = c.post("/console/login", data={"csrf": csrf_of(c), "username": DEMO_MANAGER, "password": password})
    assert r.status_code == 302
    html = c.get("/console/today").get_data(as_text=True)
    assert "林经理（演示）" in html and "业主" in html  # a manager: owner records in the menu


def test_no_demo_manager_outside_the_demo_community(env):
    from bot.demo import ensure_demo_manager

    assert ensure_demo_manager() is None


def test_unconfigured_channel_is_said_once(demo, caplog):
    from ground import clock
    from bot.outbound import outbox, sender
    from handlers.message import Push
    from store.db import session_scope
    from store.models import OutboxMessage

    sender._unconfigured_said.clear()
    with session_scope() as s:
        ids = [outbox.add(s, Push("mp", "o_li", "text", {"content": f"第{i}条"}, dedup_key=f"t:{i}"), clock.now())
               for i in range(3)]
        s.flush()
        ids = [r.id for r in ids]
    with caplog.at_level(logging.INFO, logger="bot.outbound.sender"):
        results = [sender.send_one(i) for i in ids]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "not configured" in warnings[0].getMessage()
    assert not any("dead" in r.getMessage() for r in warnings)
    with session_scope() as s:
        errors = [s.get(OutboxMessage, i).last_error for i in ids]
    assert all(e.startswith("not configured") for e in errors), (results, errors)


def _sheet(data: bytes, title: str) -> list[list]:
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data))
    return [list(r) for r in wb[title].iter_rows(values_only=True)]


def test_excel_exports_in_the_managers_words(api, frozen_clock):
    from datetime import datetime

    from ground import clock
    from ground.clock import CST
    from store.db import session_scope
    from store.models import Owner
    from store.models.membership import Booking

    with session_scope() as s:
        t = make_ticket(s, minutes_ago=20)
        li = s.scalar(select(Owner).where(Owner.openid == "o_li"))
        now = clock.now()
        s.add(Booking(owner_id=li.id, service="housekeeping", day=now.date(), start_at=now + timedelta(days=1),
                      end_at=now + timedelta(days=1, hours=3), location="1-1201", tier="银卡",
                      team="cleaning", state="requested", price_fen=17000))
        make_miss(s, "快递柜坏了找谁")
        make_miss(s, "快递柜坏了找谁")
        done = make_ticket(s, state="closed", now=datetime(2026, 8, 10, 10, tzinfo=CST))
        done.survey_score, done.completed_at = 4, datetime(2026, 8, 10, 12, tzinfo=CST)
        tid = t.id
    c = api.client
    c.post("/console/login", data={"csrf": csrf_of(c), "username": "staff", "password": PASSWORD})
    assert c.get("/console/export/tickets.xlsx").status_code == 403  # records leave with a supervisor's login
    c.post("/console/login", data={"csrf": csrf_of(c), "username": "supervisor", "password": PASSWORD})
    r = c.get("/console/export/tickets.xlsx?state=open")
    assert r.status_code == 200 and "spreadsheetml" in r.mimetype
    rows = _sheet(r.data, "工单")
    header, first = rows[0], next(x for x in rows[1:] if x[0] == f"T{tid}")
    assert header[:4] == ["编号", "登记时间", "等级", "类别"]
    assert first[1] == datetime(2026, 9, 15, 8, 40)  # 20 minutes before 09:00, Shanghai wall time
    assert first[2] == "紧急" and first[3] == "水电维修" and "到场 超时5分钟" in first[-1]
    rows = _sheet(c.get("/console/export/bookings.xlsx").data, "预约")
    assert rows[1][1] == "家政保洁" and rows[1][2] == "李秀英" and rows[1][9] == "待审核" and rows[1][8] == 170
    rows = _sheet(c.get("/console/export/misses.xlsx").data, "未回答的问题")
    assert rows[1][:2] == ["快递柜坏了找谁", 2]
    rows = _sheet(c.get("/console/export/satisfaction.xlsx?by=category").data, "工单评价")
    assert rows[1] == ["水电维修", "2026-08", 4, 1]
    assert c.get("/console/export/nothing.xlsx").status_code == 404
    c.post("/console/login", data={"csrf": csrf_of(c), "username": "manager", "password": PASSWORD})
    html = c.get("/console/audit").get_data(as_text=True)
    assert "导出 Excel" in html and "测试supervisor" in html  # who took records out, by name


def test_faq_misses_cli_in_local_time(demo, frozen_clock, monkeypatch):
    from click.testing import CliRunner

    from bot.cli import main
    from ground.config import reset_settings
    from store.db import session_scope

    with session_scope() as s:
        m = make_miss(s, "小区里能放风筝吗")
        m.created_at = frozen_clock.now()  # 09:00 in Shanghai = 01:00 UTC
    out = CliRunner().invoke(main, ["faq", "misses"]).output
    assert "2026-09-15 09:00" in out and "Asia/Shanghai" in out
    monkeypatch.setenv("GUANJIA_TIMEZONE", "Asia/Tokyo")
    reset_settings()
    out = CliRunner().invoke(main, ["faq", "misses"]).output
    assert "2026-09-15 10:00" in out
