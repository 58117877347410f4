"""What the admin API promises beyond status codes: owner look-ups are logged,
a leaked staff token cannot read owner records, the import's dry run reports
every bad row and writes nothing, reassignment is part of the ticket's story."""
from __future__ import annotations

import time

import io

from sqlalchemy import select

from tests.console_support import ADMIN_TOKEN, api, faq_copy, make_ticket  # noqa: F401


def _audit(action: str) -> list:
    from store.db import session_scope
    from store.models import AuditLog

    with session_scope() as s:
        return [(a.actor, a.target, a.detail) for a in s.scalars(select(AuditLog).where(AuditLog.action == action))]


def test_owner_lookups_are_logged_and_staff_tokens_refused(api):
    r = api.get("/owners?q=1-1201", role="manager")
    assert r.status_code == 200
    owner = r.json["owners"][0]
    assert owner["name"] == "李秀英" and owner["phone"] == "13800000002"
    assert api.get(f"/owners/{owner['id']}", role="manager").status_code == 200
    assert api.get(f"/owners/{owner['id']}", role="admin").status_code == 200
    searches, views = _audit("owner.search"), _audit("owner.view")
    assert searches == [("api:manager", "1-1201", {"tier": None, "results": [owner["id"]]})]
    assert [v[:2] for v in views] == [("api:manager", f"owner:{owner['id']}"), ("api:admin", f"owner:{owner['id']}")]
    # A staff or supervisor token is refused, and the refusal reads nothing.
    for role in ("staff", "supervisor"):
        r = api.get(f"/owners/{owner['id']}", role=role)
        assert r.status_code == 403 and "phone" not in r.get_data(as_text=True)
    assert len(_audit("owner.view")) == 2


def test_bad_and_revoked_tokens(api):
    from store.db import session_scope
    from store.models import ApiToken, ConsoleUser

    assert api.client.get("/api/v1/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert api.client.get("/api/v1/me", headers={"Authorization": ADMIN_TOKEN}).status_code == 401  # no "Bearer"
    with session_scope() as s:
        s.scalar(select(ConsoleUser).where(ConsoleUser.username == "staff")).active = False
    assert api.get("/me", role="staff").status_code == 401
    with session_scope() as s:
        for t in s.scalars(select(ApiToken)):
            t.revoked = True
    assert api.get("/me", role="manager").status_code == 401
    assert api.get("/me", role="admin").json["role"] == "manager"


def test_api_closed_without_admin_token(api, monkeypatch):
    from ground.config import reset_settings
    from bot.web import create_app

    monkeypatch.delenv("GUANJIA_ADMIN_TOKEN")
    reset_settings()
    client = create_app().test_client()
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {api.tokens['manager']}"})
    assert r.status_code == 403 and "closed" in r.json["error"]


def test_import_dry_run_reports_every_bad_row_and_imports_nothing(api):
    from store.db import session_scope
    from store.models import Owner

    bad = ("房号,姓名,手机,会员等级,生日,物业费缴至\n"
           "1-0901,钱多多,13800000099,普通,1990-05-06,2026-12-31\n"
           "1-0902,孙小美,12345,钻石,1990-13-01,2026-12-31\n"
           "x-1,,13800000097,普通,,\n"
           "1-0901,钱多多,13800000099,普通,,\n")
    up = lambda text, q: api.post("/owners/import" + q, role="manager", content_type="multipart/form-data",  # noqa: E731
                                  data={"file": (io.BytesIO(text.encode("gbk")), "owners.csv")})
    r = up(bad, "?dry_run=0")
    assert r.status_code == 400
    errs = {(e["row"], e["field"]) for e in r.json["errors"]}
    assert errs == {(3, "phone"), (3, "tier"), (3, "birthday"), (4, "room"), (4, "name"), (5, "room")}
    assert r.json["imported"] is False
    with session_scope() as s:
        assert s.scalar(select(Owner).where(Owner.name == "钱多多")) is None
    good = "房号,姓名,手机,会员等级,生日,物业费缴至\n1-0901,钱多多,13800000099,银卡,1990/05/06,2026-12-31\n1-1201,李秀英,13800000022,,,\n"
    r = up(good, "")  # dry run by default
    assert r.status_code == 200 and r.json["dry_run"] and not r.json["imported"]
    assert (r.json["created"], r.json["updated"]) == (1, 1)
    r = up(good, "?dry_run=0")
    assert r.status_code == 200 and r.json["imported"]
    with session_scope() as s:
        q = s.scalar(select(Owner).where(Owner.name == "钱多多"))
        assert q.room == "1-0901" and q.tier == "银卡" and str(q.birthday) == "1990-05-06"
        assert s.scalar(select(Owner).where(Owner.name == "李秀英")).phone == "13800000022"


def test_import_excel(api):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["room", "name", "phone", "tier", "warranty_until"])
    ws.append(["2-0602", "郑好", 13800000055, "金卡", "2029-01-01"])
    ws.append(["2-0603", "冯雪", "not-a-phone", "金卡", None])
    buf = io.BytesIO()
    wb.save(buf)
    r = api.post("/owners/import", role="manager", content_type="multipart/form-data",
                 data={"file": (io.BytesIO(buf.getvalue()), "owners.xlsx")})
    assert r.status_code == 400 and [(e["row"], e["field"]) for e in r.json["errors"]] == [(3, "phone")]


def test_reassign_is_in_the_story_and_notifies(api, frozen_clock):
    from store.db import session_scope
    from store.models import OutboxMessage

    with session_scope() as s:
        tid = make_ticket(s, assignee="weixiu_laozhou", state="accepted", minutes_ago=20).id
    late = api.get("/tickets?late=1", role="staff").json["tickets"]
    assert [t["id"] for t in late] == [tid] and late[0]["status"] == "red"
    r = api.post(f"/tickets/{tid}/reassign", role="supervisor", json={"assignee": "weixiu_xiaoli", "reason": "老周在外"})
    assert r.status_code == 200 and r.json["assignee"] == "weixiu_xiaoli"
    events = api.get(f"/tickets/{tid}", role="staff").json["events"]
    moved = [e for e in events if e["action"] == "transferred"]
    assert moved and moved[0]["actor"] == "zhuguan_chen" and moved[0]["detail"]["to"] == "weixiu_xiaoli"
    assert moved[0]["detail"]["reason"] == "老周在外"
    with session_scope() as s:
        recipients = {o.recipient for o in s.scalars(select(OutboxMessage))}
    assert {"weixiu_xiaoli", "weixiu_laozhou", "o_li"} <= recipients
    # A closed ticket cannot be moved.
    with session_scope() as s:
        closed = make_ticket(s, state="closed").id
    r = api.post(f"/tickets/{closed}/reassign", role="supervisor", json={"assignee": "weixiu_xiaoli"})
    assert r.status_code == 409 and r.json["field"] == "ticket_id"


def test_announcement_schedule_and_cancel(api, frozen_clock):
    r = api.post("/announcements", role="supervisor",
                 json={"text": "周六上午9点中秋游园会", "target": {"tiers": ["金卡"]}, "send_at": "2026-09-19T09:00"})
    assert r.status_code == 201, r.json
    aid = r.json["id"]
    assert r.json["state"] == "scheduled" and r.json["send_at"].startswith("2026-09-19T01:00")
    r = api.post("/announcements", role="supervisor",
                 json={"text": "x", "target": {"everyone": True}, "send_at": "2026-09-01T09:00"})
    assert r.status_code == 400 and r.json["field"] == "send_at"
    r = api.post("/announcements", role="supervisor", json={"text": "", "target": {"everyone": True}})
    assert r.status_code == 400 and r.json["field"] == "text"
    r = api.post(f"/announcements/{aid}/cancel", role="supervisor")
    assert r.status_code == 200 and r.json["state"] == "cancelled"
    assert [a[:2] for a in _audit("announcement.create")] == [("api:supervisor", f"campaign:{aid}")]
    assert [a[:2] for a in _audit("announcement.cancel")] == [("api:supervisor", f"campaign:{aid}")]
    r = api.post(f"/announcements/{aid}/cancel", role="supervisor")
    assert r.status_code == 409


def test_openapi_document(api):
    spec = api.get("/openapi.json", role=None).json
    assert spec["openapi"].startswith("3.") and "bearer" in spec["components"]["securitySchemes"]
    op = spec["paths"]["/tickets/{ticket_id}/reassign"]["post"]
    assert op["x-required-role"] == "supervisor" and "assignee" in op["requestBody"]["content"]["application/json"]["schema"]["required"]
    assert spec["paths"]["/owners/{owner_id}"]["get"]["x-required-role"] == "manager"


def test_answering_a_miss_with_a_phrasing_makes_route_answer(api, faq_copy):
    from store.db import session_scope
    from store.models.faq import FaqMiss
    from tests.console_support import make_miss, wait_route

    # (Semantic retrieval may already find prohibited-acts for it; the phrasing makes it certain.)
    with session_scope() as s:
        mid = make_miss(s).id
        make_miss(s)  # asked twice
    misses = api.get("/faq/misses", role="staff").json["misses"]
    assert {m["id"] for m in misses} >= {mid}
    r = api.post("/faq/entries/prohibited-acts/phrasings", role="supervisor", json={"phrase": "小区里能放风筝吗", "miss_id": mid})
    assert r.status_code == 201 and r.json["resolved_misses"] == 2 and r.json["file"] == "community.yaml"
    from faq import matcher

    deadline = time.time() + 5  # the KB hot-reloads within a few seconds
    while "小区里能放风筝吗" not in matcher.default().store.get().by_id["prohibited-acts"].questions and time.time() < deadline:
        time.sleep(0.2)
    res = wait_route("小区里能放风筝吗", "prohibited-acts")
    assert res["intent"] == "faq" and res["faq_id"] == "prohibited-acts" and res["answer"]
    text = (faq_copy / "community.yaml").read_text(encoding="utf-8")
    assert '- "小区里能放风筝吗"' in text and text.startswith("#")  # comments kept
    with session_scope() as s:
        assert all(m.resolved for m in s.scalars(select(FaqMiss)))
    # Same phrasing twice, unknown entry: refused, naming the field.
    r = api.post("/faq/entries/prohibited-acts/phrasings", role="supervisor", json={"phrase": "小区里能放风筝吗"})
    assert r.status_code == 400 and r.json["field"] == "phrase"
    r = api.post("/faq/entries/no-such-entry/phrasings", role="supervisor", json={"phrase": "x"})
    assert r.status_code == 404 and r.json["field"] == "entry_id"


def test_new_entry_from_the_console_is_served(api, faq_copy):
    from tests.console_support import wait_route

    r = api.post("/faq/entries", role="supervisor",
                 json={"id": "kite-flying", "title": "放风筝", "questions": ["小区可以放风筝吗", "哪里能放风筝"],
                       "answer": "中心草坪可以放风筝，请远离电线和道路。", "tags": ["风筝"]})
    assert r.status_code == 201 and r.json["file"] == "console_added.yaml"
    assert wait_route("小区可以放风筝吗", "kite-flying")["faq_id"] == "kite-flying"
    r = api.post("/faq/entries", role="supervisor",
                 json={"id": "kite-flying", "title": "x", "questions": ["a b", "c d"], "answer": "y"})
    assert r.status_code == 400 and r.json["field"] == "id"
    r = api.post("/faq/entries", role="supervisor",
                 json={"id": "kite-2", "title": "x", "questions": ["only one"], "answer": "y"})
    assert r.status_code == 400 and r.json["field"] == "questions"
