"""Issue 14, "a person behind every handoff", through the webhooks: an owner's
question the bot cannot answer becomes a case with the owner's words, the
recent conversation and the O1 clock; staff pick it up and answer from WeCom;
the answer reaches the owner (a customer-service text within 48 h, a template
notice after); later questions reach the holder; closing stops O1."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests import platform as P
from tests.console_support import csrf_of, api  # noqa: F401

owner_says, staff_says, to_owner = P.owner_says, P.staff_says, P.to_owner


def click(client, userid: str, key: str, code: str) -> None:
    q, body = P.wecom_event_request(userid, "template_card_event", {
        "EventKey": key, "TaskId": "x", "CardType": "button_interaction", "ResponseCode": code})
    assert client.post("/wecom/app", query_string=q, data=body).status_code == 200
    P.drain_queues()


def wecom(fake, msgtype: str) -> list[dict]:
    return [c["json"] for c in fake.sent("/cgi-bin/message/send") if c["json"].get("msgtype") == msgtype]


def test_handoff_case_pick_up_reply_follow_up_and_close(demo, app_client, fake_platform, frozen_clock):
    from store.db import session_scope
    from store.models import AuditLog, Consultation, ServiceClock

    owner_says(app_client, "o_liu", "请问小区附近有没有好的钢琴老师推荐")  # nothing in the KB: a person must answer
    [promise] = to_owner(fake_platform, "o_liu")
    assert "10分钟内" in promise and "C1" in promise  # O1's 10 minutes, from member_clocks.yaml
    [card] = wecom(fake_platform, "template_card")
    assert card["touser"] == "kefu_xiaomei|kefu_ajie"
    assert card["template_card"]["main_title"]["title"] == "咨询C1：请问小区附近有没有好的钢琴老师推荐"
    assert "/console/consultations/1" in card["template_card"]["jump_list"][0]["url"]
    with session_scope() as s:
        case = s.get(Consultation, 1)
        assert (case.state, case.question) == ("waiting", "请问小区附近有没有好的钢琴老师推荐")
        clock = s.scalar(select(ServiceClock).where(ServiceClock.subject == "consultation:1:1"))
        assert clock.due_at == frozen_clock.now() + timedelta(minutes=10)
    fake_platform.clear()

    frozen_clock.advance(minutes=3)
    click(app_client, "kefu_ajie", "consult:take:1", "rc-consult-1")
    [upd] = fake_platform.sent("/cgi-bin/message/update_template_card")
    assert upd["json"]["button"]["replace_name"] == "阿杰已接手"
    assert any("阿杰已接手" in m for m in to_owner(fake_platform, "o_liu"))  # a first response: O1 met
    fake_platform.clear()
    # After 「我来回复」 the next plain message is the answer, exactly as typed.
    staff_says(app_client, "kefu_ajie", "您好，业委会将于10月换届，届时会在公告栏通知！")
    assert to_owner(fake_platform, "o_liu") == ["您好，业委会将于10月换届，届时会在公告栏通知！"]
    with session_scope() as s:
        assert s.get(Consultation, 1).state == "answered"
        clock = s.scalar(select(ServiceClock).where(ServiceClock.subject == "consultation:1:1"))
        assert clock.state == "met" and clock.stopped_at == frozen_clock.now() - timedelta(0)
    fake_platform.clear()

    # A new question from the owner joins the case and reaches its holder, not the whole team.
    frozen_clock.advance(minutes=5)
    owner_says(app_client, "o_liu", "那位老师一节课收费大概多少")
    texts = wecom(fake_platform, "text")
    assert texts and texts[0]["touser"] == "kefu_ajie" and "那位老师一节课收费大概多少" in texts[0]["text"]["content"]
    assert any("C1" in m and "阿杰" in m for m in to_owner(fake_platform, "o_liu"))
    assert not wecom(fake_platform, "template_card")  # no second card, no second case
    fake_platform.clear()

    # Two days later (outside the 48 h window) the answer goes as a template notice.
    frozen_clock.advance(hours=49)
    staff_says(app_client, "kefu_ajie", "回复 C1 报名请到物业中心填写表格。")
    [tpl] = fake_platform.sent("/cgi-bin/message/template/send")
    assert tpl["json"]["touser"] == "o_liu" and tpl["json"]["data"]["keyword2"]["value"] == "报名请到物业中心填写表格。"
    staff_says(app_client, "kefu_ajie", "关闭 C1")
    with session_scope() as s:
        case = s.get(Consultation, 1)
        assert (case.state, case.closed_by) == ("closed", "kefu_ajie")
        assert s.scalar(select(AuditLog).where(AuditLog.action == "consultation.closed")).target == "C1"
        assert s.scalar(select(ServiceClock).where(ServiceClock.subject == "consultation:1:2")).state != "running"


def test_asking_for_a_person_titles_the_card_with_what_was_asked(demo, app_client, fake_platform, frozen_clock):
    owner_says(app_client, "o_zhou", "请问装修的事")  # the bot offers a menu of close topics
    owner_says(app_client, "o_zhou", "人工")
    [card] = wecom(fake_platform, "template_card")
    assert card["template_card"]["main_title"]["title"] == "咨询C1：请问装修的事（要求人工）"
    assert "请问装修的事" in card["template_card"]["sub_title_text"]  # the conversation on the card


def test_only_asking_for_a_person_uses_the_conversation_for_the_title(demo, app_client, fake_platform, frozen_clock):
    owner_says(app_client, "o_zhou", "你好")
    owner_says(app_client, "o_zhou", "人工")
    [card] = wecom(fake_platform, "template_card")
    assert card["template_card"]["main_title"]["title"] == "咨询C1：业主要求人工服务"
    from store.db import session_scope
    from store.models import ConsultationEntry

    with session_scope() as s:
        lines = [(e.author_kind, e.text) for e in s.scalars(select(ConsultationEntry))]
        assert ("owner", "你好") in lines and ("owner", "人工") in lines  # the recent conversation kept


def test_reply_by_someone_else_is_refused_first_responder_owns_it(demo, app_client, fake_platform, frozen_clock):
    owner_says(app_client, "o_chen", "请问小区附近有没有好的钢琴老师推荐")
    staff_says(app_client, "kefu_xiaomei", "回复 C1 好的，我来查一下。")
    fake_platform.clear()
    staff_says(app_client, "kefu_ajie", "回复 C1 我也来。")
    assert not to_owner(fake_platform, "o_chen")
    [t] = wecom(fake_platform, "text")
    assert "小美负责" in t["text"]["content"]
    staff_says(app_client, "zhuguan_chen", "回复 C1 主管补充：十月换届。")  # a supervisor may step in
    assert to_owner(fake_platform, "o_chen") == ["主管补充：十月换届。"]


def test_staff_help_lists_the_staff_commands(demo, app_client, fake_platform):
    staff_says(app_client, "weixiu_laozhou", "帮助")
    [t] = wecom(fake_platform, "text")
    assert "接单 T12" in t["text"]["content"] and "回复 C12" in t["text"]["content"]
    assert "预约家政保洁" not in t["text"]["content"]  # not the owner's menu


def test_console_and_api_reply_reach_the_owner(api, fake_platform, frozen_clock, monkeypatch):
    """The inbox page shows the case with its clock in words; a reply typed in the
    console and one sent through /api/v1 reach the owner; closing is recorded."""
    import re

    from ground.config import reset_settings
    from bot.outbound.clients import reset_clients
    from tests.console_support import PASSWORD

    for k, v in P.channel_env(fake_platform.base_url).items():
        monkeypatch.setenv(k, v)
    reset_settings()
    reset_clients()
    from handlers.dispatch import handle
    from handlers.message import Context, Message
    from store.db import session_scope

    from store.models import Owner

    with session_scope() as s:
        s.scalar(select(Owner).where(Owner.openid == "o_wu")).last_inbound_at = frozen_clock.now()  # as the worker does
        handle(Context(s, frozen_clock.now()), Message(channel="mp", sender="o_wu", text="请问小区附近有没有好的钢琴老师推荐"))
    frozen_clock.advance(minutes=4)
    c = api.client
    c.post("/console/login", data={"csrf": csrf_of(c), "username": "staff", "password": PASSWORD})
    html = c.get("/console/consultations/").get_data(as_text=True)
    assert "C1" in html and "请问小区附近有没有好的钢琴老师推荐" in html and "首次回复 剩余6分钟" in html
    assert not re.search(r"\bO\d+\b", html)  # no rule codes on screen
    page = c.get("/console/consultations/1").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = c.post("/console/consultations/1/reply", data={"csrf": csrf, "text": "您好！换届定在十月，请留意公告。"})
    assert r.status_code == 302
    P.drain_queues()
    sent = [x["json"] for x in fake_platform.sent("/cgi-bin/message/custom/send") if x["json"]["touser"] == "o_wu"]
    assert sent[-1]["text"]["content"] == "您好！换届定在十月，请留意公告。"
    page = c.get("/console/consultations/1").get_data(as_text=True)
    assert "小美" in page and "首次回复 按时" in page  # the console user is linked to 小美

    r = api.get("/consultations", role="staff")
    assert r.status_code == 200 and r.get_json()["consultations"][0]["number"] == "C1"
    r = api.post("/consultations/1/reply", role="staff", json={"text": "补充：投票在会所。"})
    assert r.status_code == 200, r.get_json()
    P.drain_queues()
    assert any(x["json"]["text"]["content"] == "补充：投票在会所。" for x in fake_platform.sent("/cgi-bin/message/custom/send"))
    assert api.post("/consultations/1/reply", role="staff", json={}).status_code == 400
    assert api.get("/consultations/99", role="staff").status_code == 404
    r = api.post("/consultations/1/close", role="staff", json={"note": "已答复"})
    assert r.get_json()["consultation"]["state"] == "closed"
    assert api.post("/consultations/1/reply", role="staff", json={"text": "x"}).status_code == 409


def test_o1_on_a_case_fires_at_its_minute_and_is_recorded(demo, session, frozen_clock):
    from datetime import timedelta

    from handlers.consultations.core import handoff
    from handlers.membership.clocks import check_clocks
    from handlers.message import Message
    from store.models import AuditLog, Owner

    t0 = frozen_clock.now()
    liu = session.scalar(select(Owner).where(Owner.openid == "o_liu"))
    reply, pushes = handoff(session, Message(channel="mp", sender="o_liu", text="请问小区附近有没有好的钢琴老师推荐"), liu, t0)
    assert "10分钟内" in reply and pushes[0].recipient == "kefu_xiaomei|kefu_ajie"
    assert check_clocks(session, t0 + timedelta(minutes=9, seconds=59)) == []
    [late] = check_clocks(session, t0 + timedelta(minutes=10))
    assert set(late.recipient.split("|")) >= {"kefu_xiaomei", "kefu_ajie", "zhuguan_chen"}
    assert "咨询C1" in late.payload["content"]
    log = session.scalar(select(AuditLog).where(AuditLog.action == "clock_escalated"))
    assert log.target == "consultation:1:1"


def test_unbound_owner_still_gets_a_person(demo, app_client, fake_platform):
    owner_says(app_client, "o_stranger", "请问小区附近有没有好的钢琴老师推荐")
    [card] = wecom(fake_platform, "template_card")
    assert "未绑定" in str(card["template_card"]["horizontal_content_list"])
    assert "C1" in to_owner(fake_platform, "o_stranger")[0]
