"""The admin API, endpoint by endpoint: success, a validation error naming
the field, and the refusal for a role that is too low (issue 8).

CASES lists every operation of the OpenAPI description; a test checks the
list and the description cover exactly the same operations, so an endpoint
added without tests (or without a description) fails the suite.
"""
from __future__ import annotations

import io
from datetime import timedelta

import pytest

from tests.console_support import ADMIN_TOKEN, api, faq_copy, make_miss, make_ticket  # noqa: F401

RANK = {"staff": 0, "supervisor": 1, "manager": 2}


def seed(api_) -> dict:
    """Rows for every capability the endpoints read: a late ticket, a booking,
    an application, a strike, an announcement, survey answers."""
    from ground import clock
    from store.db import session_scope
    from store.models import Owner
    from store.models.campaigns import Campaign, SurveyAnswer
    from store.models.groups import ModerationCase
    from store.models.membership import Booking, MemberApplication

    now = clock.now()
    ids = {}
    with session_scope() as s:
        t = make_ticket(s, minutes_ago=30, assignee="weixiu_laozhou", state="accepted")
        t.survey_score = 4
        ids["ticket"] = t.id
        ids["closed"] = make_ticket(s, state="closed", minutes_ago=200).id
        li = s.query(Owner).filter_by(openid="o_li").one()
        b = Booking(owner_id=li.id, service="housekeeping", day=now.date(), start_at=now + timedelta(days=1),
                    end_at=now + timedelta(days=1, hours=2), location="1-1201", tier="银卡", team="customer_service",
                    state="requested")
        s.add(b)
        a = MemberApplication(owner_id=li.id, from_tier="银卡", target_tier="金卡", basis="spend")
        s.add(a)
        s.flush()
        ids["booking"], ids["application"] = b.id, a.id
        case = ModerationCase(group_chat_id="wr_vip_01", member_id="wm_zhang", violation="ad", step="warn")
        s.add(case)
        s.flush()
        ids["case"] = case.id
        c = Campaign(kind="announcement", title="停车场清洗", text="本周六停车场清洗", target={"everyone": True},
                     send_at=now + timedelta(days=2), created_by="test")
        s.add(c)
        s.add(SurveyAnswer(survey="satisfaction", period="2026Q3", owner_id=li.id, building_code="1栋", tier="银卡",
                           score=4))
        s.flush()
        ids["announcement"] = c.id
        ids["owner"] = li.id
        ids["miss"] = make_miss(s).id
        from handlers.consultations.core import handoff
        from handlers.message import Message

        handoff(s, Message(channel="mp", sender="o_li", text="请问业委会什么时候换届"), li, now)
        ids["consultation"] = 1
    return ids


CSV_OK = "room,name,phone,tier,fees_paid_until,birthday,warranty_until\n1-0901,钱多多,13800000099,普通,2026-12-31,1990-05-06,2028-01-01\n"
CSV_BAD = "room,name,phone,tier\n1-0901,钱多多,12345,钻石\nbad,,13800000098,普通\n"


def _upload(text: str, name: str = "owners.csv") -> dict:
    return {"data": {"file": (io.BytesIO(text.encode()), name)}, "content_type": "multipart/form-data"}


# (operation, least role, ok request, bad request, field the bad one names)
# Requests: (method, path, kwargs); "{ticket}" etc. are filled from the seed.
CASES = [
    ("GET /me", "staff", ("GET", "/me", {}), None, None),
    ("GET /owners", "manager", ("GET", "/owners?q=李", {}), ("GET", "/owners?tier=钻石", {}), "tier"),
    ("GET /owners/{owner_id}", "manager", ("GET", "/owners/{owner}", {}), ("GET", "/owners/99999", {}), "owner_id"),
    ("POST /owners/import", "manager", ("POST", "/owners/import?dry_run=1", "csv_ok"), ("POST", "/owners/import", "csv_bad"), "phone"),
    ("GET /staff", "staff", ("GET", "/staff?team=repair", {}), ("GET", "/staff?team=" + "x" * 40, {}), "team"),
    ("GET /groups", "supervisor", ("GET", "/groups?kind=vip", {}), ("GET", "/groups?kind=nope", {}), "kind"),
    ("GET /audit", "manager", ("GET", "/audit", {}), ("GET", "/audit?limit=0", {}), "limit"),
    ("GET /users", "manager", ("GET", "/users", {}), ("GET", "/users?role=king", {}), "role"),
    ("POST /users", "manager", ("POST", "/users", {"json": {"username": "newbie", "role": "staff", "password": "longenough1"}}),
     ("POST", "/users", {"json": {"username": "newbie2", "role": "boss", "password": "longenough1"}}), "role"),
    ("GET /tickets", "staff", ("GET", "/tickets?state=open&priority=urgent", {}), ("GET", "/tickets?priority=high", {}), "priority"),
    ("GET /tickets/{ticket_id}", "staff", ("GET", "/tickets/{ticket}", {}), ("GET", "/tickets/99999", {}), "ticket_id"),
    ("POST /tickets/{ticket_id}/contact", "supervisor", ("POST", "/tickets/{ticket}/contact", {}),
     ("POST", "/tickets/99999/contact", {}), "ticket_id"),
    ("POST /tickets/{ticket_id}/reassign", "supervisor",
     ("POST", "/tickets/{ticket}/reassign", {"json": {"assignee": "weixiu_xiaoli", "reason": "老周休假"}}),
     ("POST", "/tickets/{ticket}/reassign", {"json": {"assignee": "nobody"}}), "assignee"),
    ("GET /bookings", "staff", ("GET", "/bookings?state=requested", {}), ("GET", "/bookings?day=tomorrow", {}), "day"),
    ("GET /applications", "staff", ("GET", "/applications?state=pending", {}), ("GET", "/applications?state=maybe", {}), "state"),
    ("POST /bookings/{booking_id}/action", "staff", ("POST", "/bookings/{booking}/action", {"json": {"action": "approve"}}),
     ("POST", "/bookings/{booking}/action", {"json": {"action": "teleport"}}), "action"),
    ("POST /applications/{application_id}/review", "supervisor",
     ("POST", "/applications/{application}/review", {"json": {"approve": True}}),
     ("POST", "/applications/{application}/review", {"json": {"approve": "yes"}}), "approve"),
    ("GET /roster", "staff", ("GET", "/roster", {}), None, None),
    ("GET /announcements", "staff", ("GET", "/announcements", {}), ("GET", "/announcements?state=lost", {}), "state"),
    ("POST /announcements", "supervisor",
     ("POST", "/announcements", {"json": {"text": "本周日上午电梯年检", "target": {"buildings": ["1栋"]}, "send_at": "2030-01-05T09:00"}}),
     ("POST", "/announcements", {"json": {"text": "电梯年检", "target": {"floors": [3]}}}), "target.floors"),
    ("GET /announcements/{announcement_id}", "staff", ("GET", "/announcements/{announcement}", {}),
     ("GET", "/announcements/99999", {}), "announcement_id"),
    ("POST /announcements/{announcement_id}/cancel", "supervisor", ("POST", "/announcements/{announcement}/cancel", {}),
     ("POST", "/announcements/99999/cancel", {}), "announcement_id"),
    ("POST /announcements/preview", "supervisor", ("POST", "/announcements/preview", {"json": {"target": {"buildings": ["1栋"]}}}),
     ("POST", "/announcements/preview", {"json": {"target": {"floors": [3]}}}), "target.floors"),
    ("POST /announcements/{announcement_id}/retry", "supervisor", ("POST", "/announcements/{announcement}/retry", {}),
     ("POST", "/announcements/99999/retry", {}), "announcement_id"),
    ("GET /surveys/results", "supervisor", ("GET", "/surveys/results?by=building", {}),
     ("GET", "/surveys/results?by=category&source=survey", {}), "by"),
    ("POST /strikes/{case_id}/decide", "supervisor", ("POST", "/strikes/{case}/decide", {"json": {"decision": "fp"}}),
     ("POST", "/strikes/{case}/decide", {"json": {"decision": "forgive"}}), "decision"),
    ("GET /faq/entries", "staff", ("GET", "/faq/entries?q=停车", {}), ("GET", "/faq/entries?q=" + "x" * 70, {}), "q"),
    ("GET /faq/misses", "staff", ("GET", "/faq/misses", {}), ("GET", "/faq/misses?all=yes", {}), "all"),
    ("POST /faq/entries/{entry_id}/phrasings", "supervisor",
     ("POST", "/faq/entries/prohibited-acts/phrasings", {"json": {"phrase": "小区里能放风筝吗", "miss_id": "{miss}"}}),
     ("POST", "/faq/entries/prohibited-acts/phrasings", {"json": {"phrase": ""}}), "phrase"),
    ("POST /faq/entries", "supervisor",
     ("POST", "/faq/entries", {"json": {"id": "kite-flying", "title": "放风筝", "questions": ["小区能放风筝吗", "哪里可以放风筝"],
                                        "answer": "小区中心草坪可以放风筝，请远离电线和道路。", "tags": ["风筝"]}}),
     ("POST", "/faq/entries", {"json": {"id": "Bad Id", "title": "x", "questions": ["a", "b"], "answer": "y"}}), "id"),
    ("GET /consultations", "staff", ("GET", "/consultations?state=waiting", {}), ("GET", "/consultations?state=maybe", {}), "state"),
    ("GET /consultations/{case_id}", "staff", ("GET", "/consultations/{consultation}", {}),
     ("GET", "/consultations/99999", {}), "case_id"),
    ("POST /consultations/{case_id}/reply", "staff", ("POST", "/consultations/{consultation}/reply", {"json": {"text": "您好，十月换届。"}}),
     ("POST", "/consultations/{consultation}/reply", {"json": {"text": ""}}), "text"),
    ("POST /consultations/{case_id}/close", "staff", ("POST", "/consultations/{consultation}/close", {"json": {"note": "已答复"}}),
     ("POST", "/consultations/99999/close", {"json": {}}), "case_id"),
    ("GET /strikes", "supervisor", ("GET", "/strikes?group=wr_vip_01", {}), ("GET", "/strikes?status=angry", {}), "status"),
]


def _call(api_, req, ids, role):
    method, path, kw = req
    path = path.format(**ids)
    if isinstance(kw, dict) and "json" in kw:  # fill ids into bodies too
        kw = {"json": {k: (int(v.format(**ids)) if isinstance(v, str) and v.startswith("{") else v)
                       for k, v in kw["json"].items()}}
    if kw == "csv_ok":
        kw = _upload(CSV_OK)
    elif kw == "csv_bad":
        kw = _upload(CSV_BAD)
    return getattr(api_, method.lower())(path, role=role, **kw)


def test_every_described_operation_has_cases(api):
    spec = api.get("/openapi.json", role=None).json
    described = {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops} - {"GET /openapi.json"}
    assert described == {c[0] for c in CASES}


def test_every_route_is_described(api):
    app = api.client.application
    spec = api.get("/openapi.json", role=None).json
    import re

    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule[len("/api/v1"):])
        for m in rule.methods - {"HEAD", "OPTIONS"}:
            assert m.lower() in spec["paths"].get(path, {}), f"{m} {path} is not in openapi.json"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_endpoint(api, faq_copy, case):
    op, role, ok, bad, field = case
    ids = seed(api)
    # Role refusal: one step below the least role (staff-level endpoints: no token at all).
    lower = [r for r, n in RANK.items() if n == RANK[role] - 1]
    if lower:
        r = _call(api, ok, ids, lower[0])
        assert r.status_code == 403, (op, r.json)
        assert role in r.json["error"]
    r = _call(api, ok, ids, None)
    assert r.status_code == 401
    # Success, with the least role that may call it.
    r = _call(api, ok, ids, role)
    assert r.status_code in (200, 201), (op, r.status_code, r.json)
    # Validation error names the field.
    if bad is not None:
        r = _call(api, bad, ids, role)
        assert r.status_code in (400, 404), (op, r.status_code, r.json)
        if field:
            assert r.json["field"] == field, (op, r.json)
