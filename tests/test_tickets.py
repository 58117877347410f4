"""Complaints and repairs (issue 4): every clock of RULES.md O4-O11, O19, O20
with a controlled clock, driven through handlers.dispatch.handle like the worker."""
from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import select

from ground import clock
from ground.clock import CST
from handlers.message import Context, Message
from handlers.route_result import RouteResult


def at(*args) -> datetime:
    return datetime(*args, tzinfo=CST)


# ------------------------------------------------------------------ helpers

def _store(s, pushes):
    from bot.outbound import outbox

    for p in pushes:
        outbox.add(s, p, clock.now())


def complain(text: str, priority: str, category: str, sender: str = "o_wang", channel: str = "mp"):
    """An owner's message the classifier called a complaint (the classifier is
    someone else's; the route result is built here)."""
    from handlers import registry
    from handlers.dispatch import handle  # noqa: F401  (loads the capabilities)
    from store.db import session_scope

    msg = Message(channel=channel, sender=sender, chat="private", text=text, role="owner")
    with session_scope() as s:
        out = registry.get_intent_handler("complaint")(
            Context(s, clock.now()), msg, RouteResult(intent="complaint", priority=priority, category=category))
        _store(s, out.pushes)
    return out


def say(sender: str, text: str, staff: bool = False):
    from handlers.dispatch import handle
    from store.db import session_scope

    msg = Message(channel="wecom" if staff else "mp", sender=sender, chat="staff" if staff else "private", text=text)
    with session_scope() as s:
        out = handle(Context(s, clock.now()), msg)
        _store(s, out.pushes)
    return out


def click(userid: str, key: str, task_id: str, code: str):
    from handlers.dispatch import handle
    from store.db import session_scope

    msg = Message(channel="wecom", sender=userid, chat="staff", kind="event", event="template_card_event",
                  data={"EventKey": key, "TaskId": task_id, "ResponseCode": code, "CardType": "button_interaction"})
    with session_scope() as s:
        out = handle(Context(s, clock.now()), msg)
        _store(s, out.pushes)
    return out


def tick():
    """What the scheduler does every minute."""
    from handlers.tickets import check_clocks
    from store.db import session_scope

    with session_scope() as s:
        pushes = check_clocks(s, clock.now())
        _store(s, pushes)
    return pushes


def ticket(n: int = 1):
    from store.db import session_scope
    from store.models import Ticket

    with session_scope() as s:
        t = s.get(Ticket, n)
        s.expunge(t)
        return t


def clocks(n: int = 1) -> dict:
    from store.db import session_scope
    from store.models import TicketClock

    with session_scope() as s:
        rows = s.scalars(select(TicketClock).where(TicketClock.ticket_id == n).order_by(TicketClock.id)).all()
        return {(r.clock if r.round == 0 else f"{r.clock}#{r.round}"): r for r in rows}


def events(n: int = 1) -> list:
    from store.db import session_scope
    from store.models import TicketEvent

    with session_scope() as s:
        return [(e.action, e.actor, e.detail, e.at) for e in
                s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == n).order_by(TicketEvent.id)).all()]


def actions(n: int = 1, action: str | None = None, clock_id: str | None = None) -> list:
    return [e for e in events(n) if (action is None or e[0] == action)
            and (clock_id is None or e[2].get("clock") == clock_id)]


def of(pushes, kind=None, to=None):
    return [p for p in pushes if (kind is None or p.kind == kind) and (to is None or to in p.recipient.replace("|", ",").split(","))]


def text_of(pushes, to) -> str:
    return "\n".join(p.payload.get("content", "") for p in of(pushes, to=to))


# ------------------------------------------------------------------ calendar

def test_working_days_follow_the_official_calendar(caplog):
    from handlers import calendar_cn

    assert not calendar_cn.is_working_day(datetime(2026, 10, 5).date())  # a Monday in the National Day holiday
    assert calendar_cn.is_working_day(datetime(2026, 10, 10).date())  # a Saturday made a working day
    assert calendar_cn.is_working_day(datetime(2026, 9, 20).date())  # Sunday, adjusted working day
    assert calendar_cn.holiday_name(datetime(2026, 10, 3).date()) == "National Day"
    # 3 working days from Wed 30 Sep: 8, 9 and (Saturday) 10 October -> by the end of 10 October.
    assert calendar_cn.add_working_days(at(2026, 9, 30, 16), 3) == at(2026, 10, 11)
    assert calendar_cn.add_working_days(at(2026, 9, 30, 15), 1) == at(2026, 10, 9)
    assert calendar_cn.add_working_days(at(2026, 10, 3, 9), 1) == at(2026, 10, 9)  # reported on a holiday
    # Beyond chinesecalendar's data: weekends only, one warning.
    calendar_cn._warned_years.discard(2027)
    with caplog.at_level("WARNING"):
        assert calendar_cn.is_working_day(datetime(2027, 3, 1).date())
        assert not calendar_cn.is_working_day(datetime(2027, 3, 6).date())
    assert sum("2027" in r.getMessage() for r in caplog.records) == 1


def test_policy_files_are_validated(tmp_path):
    from handlers.tickets.policy import PolicyError, load_policy, load_roster

    p = load_policy()
    assert [c.id for c in p.clocks_for("general", "complaint", False)] == ["routed", "resolution", "first_reply",
                                                                          "plan", "result", "followup"]
    bad = tmp_path / "clocks.yaml"
    bad.write_text((load_policy.__globals__["CLOCKS_FILE"]).read_text(encoding="utf-8")
                   .replace("stop: [on_site, completed]", "stop: [arrived, completed]"), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"clocks.yaml: classes.urgent.clocks\[1\] \(on_site\): field start/stop"):
        load_policy(bad)
    r = tmp_path / "duty_roster.yaml"
    r.write_text("categories: {repair: plumbers}\nteams: {repair: {on_duty: {'*': [a]}}}\n"
                 "escalation: {supervisor: s, manager: m}\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"duty_roster.yaml: categories.repair: unknown team 'plumbers'"):
        load_roster(r)


# ------------------------------------------------------------------ urgent (O5, O10, O8, O9, O11, O20)

def test_urgent_repair_walks_through_every_clock(demo, frozen_clock):
    out = complain("厨房水管爆裂了，水漫到客厅", "urgent", "repair")
    assert "T1" in out.replies[0] and "紧急" in out.replies[0]
    t = ticket()
    assert (t.state, t.room, t.building, t.contact_name, t.contact_phone, t.kind) == \
        ("open", "1-0801", "1栋", "王建国", "13800000001", "repair")
    [card] = of(out.pushes, "template_card")
    assert card.recipient == "weixiu_laozhou|weixiu_xiaoli"  # urgent: everyone on duty for 1栋 repairs
    assert card.payload["card"]["task_id"] == "T1v1" and card.payload["card"]["card_type"] == "button_interaction"
    assert [b["key"] for b in card.payload["card"]["button_list"]] == ["ticket:accept:T1", "ticket:transfer:T1"]
    c = clocks()
    assert set(c) == {"accept", "on_site"}  # a repair, not a complaint: no O4 clocks
    assert c["accept"].due_at == at(2026, 9, 15, 9, 5) and c["on_site"].due_at == at(2026, 9, 15, 9, 15)
    assert {e[2]["clock"] for e in actions(action="clock_started")} == {"accept", "on_site"}

    frozen_clock.set(at(2026, 9, 15, 9, 4))
    assert tick() == []
    out = click("weixiu_laozhou", "ticket:accept:T1", "T1v1", "rc-accept")
    [upd] = of(out.pushes, "update_card")
    assert upd.payload == {"response_code": "rc-accept", "button": {"replace_name": "老周已接单"}}
    assert set(upd.recipient.split(",")) == {"weixiu_laozhou", "weixiu_xiaoli"}
    assert "老周受理" in text_of(out.pushes, "o_wang")  # O8
    assert clocks()["accept"].state == "met" and ticket().assignee == "weixiu_laozhou"

    frozen_clock.set(at(2026, 9, 15, 9, 10))  # O5 warning 5 minutes before the 15 are up
    pushes = tick()
    assert "将于09-15 09:15超时" in text_of(pushes, "weixiu_laozhou")
    assert tick() == [] and clocks()["on_site"].warned_at == at(2026, 9, 15, 9, 10)
    assert "正在赶往" in text_of(say("weixiu_laozhou", "出发 T1", staff=True).pushes, "o_wang")
    frozen_clock.set(at(2026, 9, 15, 9, 13))
    out = say("weixiu_laozhou", "到场 T1", staff=True)
    assert "已到达现场" in text_of(out.pushes, "o_wang")
    assert clocks()["on_site"].state == "met" and clocks()["on_site"].stopped_at == at(2026, 9, 15, 9, 13)
    out = say("weixiu_laozhou", "进度 T1 已关闭总阀，正在更换水管", staff=True)
    assert "已关闭总阀" in text_of(out.pushes, "o_wang")

    frozen_clock.set(at(2026, 9, 15, 10, 0))
    out = say("weixiu_laozhou", "完成 T1 已更换破裂水管并清理积水", staff=True)
    owner_text = text_of(out.pushes, "o_wang")
    assert "已处理完成：已更换破裂水管" in owner_text and "1-5 分" in owner_text  # O9 result + survey
    [cb] = of(out.pushes, "template_card", "kefu_xiaomei")  # O11: customer service calls back
    assert cb.payload["card"]["button_list"][0]["key"] == "ticket:callback:T1"
    c = clocks()
    assert c["result"].state == "met" and c["result"].stopped_at == at(2026, 9, 15, 10)
    assert c["callback"].due_at == at(2026, 9, 17)  # by the end of the next working day (Wed 16th)

    out = say("o_wang", "5 师傅很专业")
    assert "已办结" in out.replies[0] and ticket().state == "closed" and ticket().survey_score == 5

    frozen_clock.set(at(2026, 9, 16, 19, 59))
    assert tick() == []
    frozen_clock.set(at(2026, 9, 16, 20, 0))
    assert "回访" in text_of(tick(), "kefu_xiaomei")
    frozen_clock.set(at(2026, 9, 17, 0, 0))  # O11 broken: supervisor, then manager
    [esc] = tick()
    assert esc.recipient == "zhuguan_chen" and esc.payload["card"]["button_list"][0]["key"] == "ticket:takeover:T1"
    frozen_clock.set(at(2026, 9, 17, 3, 59))
    assert tick() == []
    frozen_clock.set(at(2026, 9, 17, 4, 0))
    assert [p.recipient for p in tick()] == ["jingli_lin"]
    frozen_clock.set(at(2026, 9, 17, 9, 0))
    assert tick() == []  # the ladder has no more rungs
    say("kefu_xiaomei", "回访 T1 业主表示水管已正常", staff=True)
    assert clocks()["callback"].state == "late"
    story = [e[0] for e in events()]
    for step in ("created", "registered", "dispatched", "accepted", "on_the_way", "on_site", "progress",
                 "completed", "result_sent", "survey", "closed", "clock_warned", "clock_breached",
                 "clock_escalated", "called_back", "clock_late"):
        assert step in story, step  # O20: the whole story is on the ticket


# ------------------------------------------------------------------ important (O6, ladder, O9 reopen)

def test_important_request_escalation_ladder_and_low_score_reopens(demo, frozen_clock):
    out = complain("2栋电梯异响还突然停了一下，怕困人", "important", "facility", sender="o_zhao")
    [card] = of(out.pushes, "template_card")
    assert card.recipient == "weixiu_xiaoli|zhuguan_chen"  # O6: on duty + the department head
    c = clocks()
    assert set(c) == {"routed_to_head", "resolution"}  # a public facility: no home call-back
    assert c["routed_to_head"].due_at == at(2026, 9, 15, 10) and c["resolution"].due_at == at(2026, 9, 16, 9)

    frozen_clock.set(at(2026, 9, 15, 9, 45))
    pushes = tick()
    assert {p.recipient for p in pushes} == {"weixiu_xiaoli", "zhuguan_chen"}  # warned before the hour
    frozen_clock.set(at(2026, 9, 15, 10, 0))  # nobody took it: the next on duty gets the card
    [redo] = tick()
    assert redo.recipient == "weixiu_laozhou" and redo.payload["card"]["task_id"] == "T1v2"
    assert clocks()["routed_to_head"].state == "breached"
    frozen_clock.set(at(2026, 9, 15, 10, 30))
    [sup] = tick()
    assert sup.recipient == "zhuguan_chen" and "超时升级" in sup.payload["card"]["main_title"]["title"]
    frozen_clock.set(at(2026, 9, 15, 11, 0))
    [mgr] = tick()
    assert mgr.recipient == "jingli_lin"
    frozen_clock.set(at(2026, 9, 15, 11, 30))
    assert tick() == []
    steps = [(e[2]["step"], e[2]["to"]) for e in actions(action="clock_escalated")]
    assert steps == [("redispatch", "weixiu_laozhou"), ("supervisor", "zhuguan_chen"), ("manager", "jingli_lin")]

    # What the outbound sender keeps from each card's send: its response_code.
    from store.db import session_scope
    from store.models import OutboxMessage

    with session_scope() as s:
        cards = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "template_card")).all()
        for row in cards:
            row.payload = {**row.payload, "_result": {"response_code": f"rc-send-{row.id}"}}
        sent = {f"rc-send-{row.id}" for row in cards}
    assert len(sent) == 4  # the dispatch, the re-dispatch and two escalation cards
    out = say("weixiu_laozhou", "接单 T1", staff=True)
    assert "您已接单T1" in out.replies[0]
    # A text command settles every copy of the card, each with its own code.
    assert {p.payload["response_code"] for p in of(out.pushes, "update_card")} == sent
    assert all(p.payload["button"]["replace_name"] == "老周已接单" for p in of(out.pushes, "update_card"))
    assert clocks()["routed_to_head"].state == "late"
    frozen_clock.set(at(2026, 9, 16, 7, 0))
    assert "超时" in text_of(tick(), "weixiu_laozhou")  # resolution warning, 2 h ahead
    frozen_clock.set(at(2026, 9, 16, 8, 0))
    say("weixiu_laozhou", "完成 T1 已更换曳引机限位开关，电梯检测正常", staff=True)
    assert clocks()["resolution"].state == "met"

    out = say("o_zhao", "不满意 电梯还是有异响")  # O9: dissatisfied -> supervisor follows up
    t = ticket()
    assert (t.state, t.assignee, t.reopen_count, t.survey_score) == ("reopened", "zhuguan_chen", 1, 1)
    assert "陈主管" in out.replies[0]
    [sup_card] = of(out.pushes, "template_card", "zhuguan_chen")
    assert "不满意" in sup_card.payload["card"]["main_title"]["title"]
    assert clocks()["followup#1"].due_at == at(2026, 9, 17, 8)
    frozen_clock.set(at(2026, 9, 16, 15, 0))
    out = say("zhuguan_chen", "完成 T1 已请电梯公司复检并陪同业主试乘", staff=True)
    assert "请为本次服务打分" in text_of(out.pushes, "o_zhao")
    assert clocks()["followup#1"].state == "met"
    out = say("o_zhao", "满意")
    assert ticket().state == "closed" and ticket().survey_score == 5
    assert [e[2]["score"] for e in actions(action="survey")] == [1, 5]


# ------------------------------------------------------------------ general (O7, O4) across National Day

def test_general_complaint_counts_working_days_across_national_day(demo, frozen_clock):
    frozen_clock.set(at(2026, 9, 30, 16, 0))
    out = complain("楼上每天半夜拖椅子，噪音很大", "general", "noise", sender="o_liu")
    [card] = of(out.pushes, "template_card")
    assert card.recipient == "baoan_dawei"
    c = clocks()
    assert set(c) == {"routed", "resolution", "first_reply", "plan"}
    assert c["routed"].due_at == at(2026, 10, 1)  # O7: routed the same day
    assert c["resolution"].due_at == at(2026, 10, 11)  # 3 working days: 8, 9 and Saturday 10 October
    assert c["first_reply"].due_at == at(2026, 10, 1, 16) and c["plan"].due_at == at(2026, 10, 2, 16)  # O4

    frozen_clock.set(at(2026, 9, 30, 17, 0))
    say("baoan_dawei", "接单 T1", staff=True)
    c = clocks()
    assert c["routed"].state == "met" and c["first_reply"].state == "met"

    frozen_clock.set(at(2026, 10, 2, 12, 0))
    assert "处理方案" in text_of(tick(), "baoan_dawei")  # O4 plan warning
    frozen_clock.set(at(2026, 10, 2, 16, 0))
    [esc] = tick()
    assert esc.recipient == "zhuguan_chen" and clocks()["plan"].state == "breached"
    frozen_clock.set(at(2026, 10, 3, 10, 0))
    out = say("baoan_dawei", "进度 T1 已上门与楼上住户沟通，加装椅脚垫", staff=True)
    assert "加装椅脚垫" in text_of(out.pushes, "o_liu")
    assert clocks()["plan"].state == "late"

    # Calendar days alone would have broken the clock on 3 October; the holiday does not count.
    for day in (3, 5, 7, 9):
        frozen_clock.set(at(2026, 10, day, 19, 0))
        assert tick() == []
    frozen_clock.set(at(2026, 10, 10, 19, 59))
    assert tick() == []
    frozen_clock.set(at(2026, 10, 10, 20, 0))  # 4 h before the end of the adjusted Saturday
    assert "3个工作日" in text_of(tick(), "baoan_dawei")
    frozen_clock.set(at(2026, 10, 11, 0, 0))
    [esc] = tick()
    assert esc.recipient == "zhuguan_chen" and clocks()["resolution"].state == "breached"
    [ev] = actions(action="clock_breached", clock_id="resolution")
    assert ev[3] == at(2026, 10, 11) and ev[2]["rule"] == "O7"
    frozen_clock.set(at(2026, 10, 11, 10, 0))
    say("baoan_dawei", "完成 T1 已协调双方，楼上承诺晚十点后不再挪动家具", staff=True)
    assert clocks()["resolution"].state == "late" and clocks()["result"].state == "met"
    out = say("o_liu", "3 还行吧")
    assert ticket().state == "closed" and ticket().survey_comment == "还行吧"


def test_home_repair_callback_is_one_working_day_after_the_holiday(demo, frozen_clock):
    frozen_clock.set(at(2026, 9, 30, 10, 0))
    complain("卫生间门把手松了", "general", "repair", sender="o_zhou")
    say("weixiu_xiaoli", "接单 T1", staff=True)
    frozen_clock.set(at(2026, 9, 30, 15, 0))
    say("weixiu_xiaoli", "完成 T1 已紧固门把手", staff=True)
    assert clocks()["callback"].due_at == at(2026, 10, 9)  # the next working day is 8 October
    for day in (1, 4, 7):
        frozen_clock.set(at(2026, 10, day, 12, 0))
        assert tick() == []
    frozen_clock.set(at(2026, 10, 8, 20, 0))
    assert "回访" in text_of(tick(), "kefu_ajie")  # 2栋's customer service
    frozen_clock.set(at(2026, 10, 8, 21, 0))
    out = click("kefu_ajie", "ticket:callback:T1", "T1v3", "rc-cb")
    assert of(out.pushes, "update_card")[0].payload["button"]["replace_name"] == "已回访"
    assert clocks()["callback"].state == "met"


# ------------------------------------------------------------------ O10: two clicks at once

def test_two_staff_accept_at_the_same_moment(demo, frozen_clock):
    complain("家里整个跳闸停电了", "urgent", "electrical")
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def go(userid: str, code: str) -> None:
        barrier.wait()
        results[userid] = click(userid, "ticket:accept:T1", "T1v1", code)

    threads = [threading.Thread(target=go, args=(u, f"rc-{u}")) for u in ("weixiu_laozhou", "weixiu_xiaoli")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    owner = ticket().assignee
    loser = ({"weixiu_laozhou", "weixiu_xiaoli"} - {owner}).pop()
    assert "您已接单T1" in results[owner].replies[0]
    assert "已由" in results[loser].replies[0] and "接单" in results[loser].replies[0]
    assert len(actions(action="accepted")) == 1 and len(actions(action="accept_refused")) == 1
    assert of(results[loser].pushes, "update_card")[0].payload["response_code"] == f"rc-{loser}"


# ------------------------------------------------------------------ owners: binding, listing, nudging

def test_unbound_owner_is_asked_for_the_room_and_the_ticket_waits(demo, frozen_clock):
    from store.db import session_scope
    from store.models import Owner

    with session_scope() as s:
        s.scalar(select(Owner).where(Owner.openid == "o_liu")).openid = None
    out = complain("电梯口垃圾没人清理", "general", "sanitation", sender="o_stranger")
    assert "T1" in out.replies[0] and "房号" in out.replies[0] and not out.pushes
    assert ticket().state == "waiting_home" and clocks() == {}
    out = say("o_stranger", "1-1803 9999")
    assert "不匹配" in out.replies[0] and ticket().state == "waiting_home"
    assert actions(action="bind_failed")
    frozen_clock.advance(minutes=10)
    out = say("o_stranger", "1-1803 0004")
    assert "刘芳" in out.replies[0] and "T1" in out.replies[0]
    t = ticket()
    assert (t.state, t.room, t.contact_phone) == ("open", "1-1803", "13800000004")
    assert of(out.pushes, "template_card")[0].recipient == "baojie_ayi"
    assert clocks()["routed"].started_at == at(2026, 9, 15, 9, 0)  # the owner's time counts from the report


def test_binding_accepts_the_room_and_the_phone_digits_in_two_messages(demo, frozen_clock):
    from store.db import session_scope
    from store.models import Owner

    with session_scope() as s:
        s.scalar(select(Owner).where(Owner.openid == "o_liu")).openid = None
    complain("电梯口垃圾没人清理", "general", "sanitation", sender="o_stranger")
    out = say("o_stranger", "1-1803")
    assert "手机号的后四位" in out.replies[0] and ticket().state == "waiting_home"
    out = say("o_stranger", "0004")
    assert "刘芳" in out.replies[0] and ticket().state == "open"


def test_owner_lists_and_nudges_tickets(demo, frozen_clock):
    complain("楼道灯坏了", "general", "facility", sender="o_li")
    out = say("o_li", "我的工单")
    assert "T1" in out.replies[0] and "待接单" in out.replies[0]
    out = say("o_li", "催一下 T1")
    assert "等待值班人员接单" in out.replies[0] and of(out.pushes, to="weixiu_laozhou")
    say("weixiu_laozhou", "接单 T1", staff=True)
    out = say("o_li", "催一下 T1")
    assert "老周" in out.replies[0] and "13900000003" in out.replies[0]
    assert "催办" in text_of(out.pushes, "weixiu_laozhou")
    assert ticket().nudges == 2 and len(actions(action="nudged")) == 2
    assert "T1" in say("weixiu_laozhou", "我的工单", staff=True).replies[0]
    assert "没有找到" in say("o_wang", "催一下 T1").replies[0]  # not his ticket
    # O10: only the owner of the ticket (or a supervisor) may complete or transfer it.
    assert "首问负责制" in say("weixiu_xiaoli", "完成 T1", staff=True).replies[0]
    out = say("weixiu_laozhou", "转派 T1 小李", staff=True)
    assert ticket().assignee == "weixiu_xiaoli" and of(out.pushes, "template_card", "weixiu_xiaoli")


# ------------------------------------------------------------------ O19 digests

def test_daily_digest_and_monthly_summary(demo, frozen_clock):
    from handlers.tickets import daily_digest, monthly_summary
    from store.db import session_scope

    complain("水管爆了", "urgent", "plumbing")
    complain("楼下烧烤油烟", "general", "environment", sender="o_li")
    click("weixiu_laozhou", "ticket:accept:T1", "T1v1", "rc1")
    frozen_clock.set(at(2026, 9, 15, 10, 0))
    tick()  # the on-site clock of T1 is broken
    say("weixiu_laozhou", "完成 T1 换了阀门", staff=True)
    say("o_wang", "4")
    assert clocks(1)["on_site"].state == "late"  # completing stops the on-site clock too
    frozen_clock.set(at(2026, 9, 16, 0, 0))
    assert of(tick(), "template_card", "kefu_xiaomei")  # T2 was not routed the same day (O7)
    frozen_clock.set(at(2026, 9, 16, 8, 30))
    with session_scope() as s:
        [d] = daily_digest(s, clock.now())
        assert d.recipient == "zhuguan_chen" and d.dedup_key == "tickets:daily:2026-09-16"
        assert "T2 O7" in d.payload["content"] and "未办结 1 件" in d.payload["content"]
    frozen_clock.set(at(2026, 10, 1, 8, 0))
    with session_scope() as s:
        pushes = monthly_summary(s, clock.now())
    assert [p.recipient for p in pushes] == ["zhuguan_chen", "jingli_lin"]
    body = pushes[0].payload["content"]
    assert "2026-09" in body and "共 2 件" in body and "紧急 1" in body and "一般 1" in body
    assert "满意度：4.0" in body and "O5 1 次" in body and "O7 1 次" in body


def test_staff_registers_for_an_owner_and_survey_never_cuts_another_exchange(demo, frozen_clock):
    from handlers import conversation
    from handlers import registry
    from handlers.dispatch import handle  # noqa: F401
    from store.db import session_scope

    msg = Message(channel="wecom", sender="kefu_ajie", chat="staff", text="业主来电：客厅灯不亮", role="staff")
    with session_scope() as s:
        out = registry.get_intent_handler("complaint")(
            Context(s, clock.now()), msg, RouteResult(intent="complaint", priority="general", category="repair"))
    assert "房号" in out.replies[0] and ticket().state == "waiting_home"
    out = say("kefu_ajie", "2-1603", staff=True)
    t = ticket()
    assert (t.state, t.room, t.contact_name) == ("open", "2-1603", "吴强")
    with session_scope() as s:  # staff registering does not bind anyone's account
        from store.models import Owner
        assert s.scalar(select(Owner).where(Owner.name == "吴强")).openid == "o_wu"
    say("weixiu_xiaoli", "接单 T1", staff=True)
    with session_scope() as s:  # the owner is in the middle of another exchange
        conversation.start(s, "o_wu", "private", "someone_elses", {"step": "time"}, clock.now())
    out = say("weixiu_xiaoli", "完成 T1 已更换灯管", staff=True)
    assert "评价 T1 5" in text_of(out.pushes, "o_wu") and actions(action="survey_deferred")
    with session_scope() as s:
        assert conversation.get(s, "o_wu", "private", clock.now()).handler == "someone_elses"
    out = say("o_wu", "评价 T1 4 师傅很准时")
    assert ticket().state == "closed" and ticket().survey_score == 4 and ticket().survey_comment == "师傅很准时"


def test_survey_answers_are_read_as_the_owner_means_them():
    from handlers.tickets.survey import parse_answer

    assert parse_answer("不满意，还是漏水") == (1, "还是漏水")
    assert parse_answer("满意") == (5, "")
    assert parse_answer("一般") == (3, "")
    assert parse_answer("2分 太慢了") == (2, "太慢了")
    assert parse_answer("5") == (5, "")
    assert parse_answer("明天下午有空吗") is None
    assert parse_answer("5楼又漏水了") is None and parse_answer("3号楼电梯坏了") is None
    assert parse_answer("满意度调查是什么？") is None
    assert parse_answer("4，还行") == (4, "还行") and parse_answer("5分很好") == (5, "很好")


def test_result_clock_fires_when_the_owner_cannot_be_messaged(demo, frozen_clock):
    """O9 from a customer group: no OA account to message, so the result is owed
    by call-back and its clock runs until someone calls."""
    from store.db import session_scope
    from store.models import Owner

    with session_scope() as s:
        s.scalar(select(Owner).where(Owner.openid == "o_chen")).openid = None
    complain("楼道里堆了好几天的垃圾", "general", "sanitation", sender="wm_chen", channel="archive")
    assert ticket().room == "1-2001"
    say("baojie_ayi", "接单 T1", staff=True)
    frozen_clock.set(at(2026, 9, 15, 10, 0))
    say("baojie_ayi", "完成 T1 已清运", staff=True)
    c = clocks()
    assert c["result"].state == "running" and c["result"].due_at == at(2026, 9, 16, 10)
    frozen_clock.set(at(2026, 9, 16, 8, 0))
    assert "反馈结果" in text_of(tick(), "baojie_ayi")
    frozen_clock.set(at(2026, 9, 16, 10, 0))
    [esc] = tick()
    assert esc.recipient == "zhuguan_chen" and clocks()["result"].state == "breached"
    frozen_clock.set(at(2026, 9, 16, 11, 0))
    say("kefu_xiaomei", "回访 T1 已电话告知业主，业主表示满意", staff=True)
    assert clocks()["result"].state == "late" and ticket().result_sent_at == at(2026, 9, 16, 11)


def test_followup_of_a_dissatisfied_owner_escalates_to_the_manager(demo, frozen_clock):
    complain("门口监控坏了", "general", "security")
    say("baoan_dawei", "接单 T1", staff=True)
    say("baoan_dawei", "完成 T1 已报修厂家", staff=True)
    say("o_wang", "1 根本没修好")
    assert ticket().state == "reopened" and clocks()["followup#1"].due_at == at(2026, 9, 16, 9)
    frozen_clock.set(at(2026, 9, 16, 7, 0))
    assert "跟进" in text_of(tick(), "zhuguan_chen")
    frozen_clock.set(at(2026, 9, 16, 9, 0))
    [esc] = tick()
    assert esc.recipient == "jingli_lin"
    out = click("jingli_lin", "ticket:takeover:T1", esc.payload["card"]["task_id"], "rc-mgr")
    assert ticket().assignee == "jingli_lin" and "接管" in out.replies[0]
    say("jingli_lin", "完成 T1 已更换摄像头并当面确认", staff=True)
    assert clocks()["followup#1"].state == "late"
    say("o_wang", "满意")
    assert ticket().state == "closed"


def test_urgent_request_nobody_moves_for_climbs_the_ladder(demo, frozen_clock):
    complain("楼道里有燃气味，好像漏气了", "urgent", "repair", sender="o_huang")  # 2栋
    frozen_clock.set(at(2026, 9, 15, 9, 4, 59))
    assert tick() == []
    frozen_clock.set(at(2026, 9, 15, 9, 5))  # O10 accept clock: everyone on duty had the card already
    [sup] = tick()
    assert sup.recipient == "zhuguan_chen" and clocks()["accept"].state == "breached"
    frozen_clock.set(at(2026, 9, 15, 9, 10))  # O5 warning and the accept ladder's next rung, together
    pushes = tick()
    assert {p.recipient for p in pushes} == {"weixiu_xiaoli", "weixiu_laozhou", "jingli_lin"}
    frozen_clock.set(at(2026, 9, 15, 9, 15))  # O5 broken
    [sup] = tick()
    assert sup.recipient == "zhuguan_chen" and "15分钟到场" in sup.payload["card"]["main_title"]["title"]
    [ev] = actions(action="clock_breached", clock_id="on_site")
    assert ev[3] == at(2026, 9, 15, 9, 15) and ev[2]["rule"] == "O5"
    out = click("zhuguan_chen", "ticket:takeover:T1", sup.payload["card"]["task_id"], "rc-sup")
    assert ticket().assignee == "zhuguan_chen" and clocks()["accept"].state == "late"
    say("zhuguan_chen", "转派 T1 老周", staff=True)
    frozen_clock.set(at(2026, 9, 15, 9, 20))
    say("weixiu_laozhou", "到场 T1", staff=True)
    assert clocks()["on_site"].state == "late"
    assert tick() == []


def test_complaint_without_a_first_reply_in_24_hours(demo, frozen_clock):
    complain("物业对小区绿化不上心，草坪一片枯黄", "general", "other", sender="o_xu")  # a complaint, O4
    frozen_clock.set(at(2026, 9, 16, 7, 0))
    tick()  # routed (O7) broke at midnight; the warnings are due too
    frozen_clock.set(at(2026, 9, 16, 9, 0))
    pushes = tick()
    [ev] = actions(action="clock_breached", clock_id="first_reply")
    assert ev[3] == at(2026, 9, 16, 9) and ev[2]["rule"] == "O4"
    assert any(p.recipient == "zhuguan_chen" and "24小时内初步回复" in p.payload["card"]["main_title"]["title"]
               for p in pushes)


def test_owner_outside_the_48h_window_gets_a_template_message(demo, frozen_clock, monkeypatch):
    from dataclasses import replace

    from handlers.tickets import core, policy as pol
    from store.db import session_scope
    from store.models import Owner

    monkeypatch.setattr(core, "policy", lambda: replace(pol.policy(), owner_template_id="tmpl-progress"))
    with session_scope() as s:
        s.scalar(select(Owner).where(Owner.openid == "o_wang")).last_inbound_at = at(2026, 9, 15, 8, 0)
    complain("空调外机漏水到楼下", "general", "repair")
    out = say("weixiu_laozhou", "接单 T1", staff=True)
    assert of(out.pushes, "text", "o_wang")  # inside the window: a customer-service text
    frozen_clock.set(at(2026, 9, 17, 9, 0))
    out = say("weixiu_laozhou", "进度 T1 配件已订，周五上门更换", staff=True)
    [tpl] = of(out.pushes, "template", "o_wang")
    assert tpl.payload["template_id"] == "tmpl-progress" and "配件已订" in tpl.payload["data"]["first"]["value"]


def test_roster_names_only_real_staff(demo, session, monkeypatch):
    from handlers.tickets import policy as pol
    from store.models import Staff

    pol.check_roster_staff(session)  # the demo roster is consistent (also run by guanjia demo-data)
    session.scalar(select(Staff).where(Staff.userid == "baoan_dawei")).active = False
    session.flush()
    with pytest.raises(pol.PolicyError, match=r"duty_roster.yaml: .*teams.security.on_duty.\*: baoan_dawei"):
        pol.check_roster_staff(session)


def test_unanswered_survey_closes_and_weekly_review_lists_old_open_tickets(demo, frozen_clock):
    from handlers.tickets import weekly_review
    from store.db import session_scope

    complain("电梯按钮失灵", "general", "facility")
    complain("草坪浇水喷到窗户", "general", "sanitation", sender="o_li")
    say("weixiu_laozhou", "接单 T1", staff=True)
    say("weixiu_laozhou", "完成 T1 已更换按钮", staff=True)
    frozen_clock.set(at(2026, 9, 18, 8, 59))
    tick()
    assert ticket(1).state == "completed"
    frozen_clock.set(at(2026, 9, 18, 9, 0))  # 72 h without an answer
    tick()
    assert ticket(1).state == "closed" and actions(1, "closed")[0][2]["reason"] == "survey unanswered"
    frozen_clock.set(at(2026, 9, 22, 9, 30))
    with session_scope() as s:
        [w] = weekly_review(s, clock.now())
    assert w.dedup_key == "tickets:weekly:2026-W39" and "T2" in w.payload["content"] and "T1" not in w.payload["content"]
