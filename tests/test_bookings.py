"""Member-service bookings through handlers.dispatch.handle: the conversation,
entitlements and quotas, capacity under concurrency, O1/O2/O3 clocks."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ground.clock import CST
from handlers.message import Context, Message

NOW = datetime(2026, 9, 15, 9, 0, tzinfo=CST)  # Tuesday


@pytest.fixture
def demo(demo):
    """The demo community without its demo spend ledger: each test sets the spend it needs."""
    from sqlalchemy import delete

    from store.db import session_scope
    from store.models import SpendEntry

    with session_scope() as s:
        s.execute(delete(SpendEntry))
    return demo


def say(session, openid, text, now=NOW):
    from handlers.dispatch import handle

    out = handle(Context(session, now), Message(channel="mp", sender=openid, chat="private", text=text))
    session.flush()
    return out


def click(session, userid, key, now=NOW, code="rc1"):
    from handlers.dispatch import handle

    return handle(Context(session, now), Message(channel="wecom", sender=userid, chat="staff", kind="event",
                                                 event="template_card_event",
                                                 data={"EventKey": key, "TaskId": "t", "ResponseCode": code}))


def bookings(session):
    from store.models import Booking

    return list(session.scalars(select(Booking).order_by(Booking.id)))


def test_conversation_fills_slots_confirms_and_books(demo, session):
    out = say(session, "o_li", "我想预约")
    assert "哪项服务" in out.replies[0] and "上门安全检查" in out.replies[0] and "私人宴会场地" not in out.replies[0]
    out = say(session, "o_li", "家政保洁")
    assert "什么时间" in out.replies[0]
    out = say(session, "o_li", "明天下午三点")
    r = out.replies[0]
    assert "请确认" in r and "9月16日(周三) 15:00" in r and "1-1201" in r and "8.5折后170元" in r
    out = say(session, "o_li", "确认")
    assert "预约已提交" in out.replies[0]
    [b] = bookings(session)
    assert (b.service, b.state, b.price_fen, b.location) == ("housekeeping", "requested", 17000, "1-1201")
    assert b.start_at == datetime(2026, 9, 16, 15, tzinfo=CST)
    card = out.pushes[0]
    assert card.kind == "template_card" and card.payload["card"]["button_list"][0]["key"] == f"booking:approve:{b.id}"


def test_one_message_booking_with_ask_location(demo, session):
    out = say(session, "o_wang", "预约私人安保 下周六上午")  # 金卡, location must be asked
    assert "服务地点" in out.replies[0]
    out = say(session, "o_wang", "浦东机场T2")
    assert "请确认" in out.replies[0] and "浦东机场T2" in out.replies[0] and "9月26日(周六) 09:00" in out.replies[0]
    out = say(session, "o_wang", "改到下周日上午")
    assert "9月27日(周日) 09:00" in out.replies[0]
    say(session, "o_wang", "好的")
    assert bookings(session)[0].day == date(2026, 9, 27)


def test_refused_service_says_what_unlocks_it(demo, session):
    out = say(session, "o_liu", "预约宴会厅")  # 普通 asks for a 金卡 service
    r = out.replies[0]
    assert "金卡会员专享" in r and "普通会员" in r and "升级至金卡" in r
    out = say(session, "o_xu", "预约宴会厅")  # 银卡 since 2025, moved in 2023: what is missing for 金卡
    assert "金卡会员专享" in out.replies[0] and "升级金卡" in out.replies[0] and "15,000" in out.replies[0]
    assert bookings(session) == []


def test_quotas_per_tier(demo, session):
    # 银卡: rubbish pickup once a week; 金卡 three times a week.
    for i, day in enumerate(["明天上午", "后天上午"]):
        say(session, "o_li", "预约垃圾上门收集" + day)
        out = say(session, "o_li", "确认")
    assert "次数" in out.replies[0] and "已用完" in out.replies[0]
    say(session, "o_li", "取消")
    out = say(session, "o_li", "预约垃圾上门收集下周一上午")  # next ISO week: allowed again
    assert "请确认" in out.replies[0]
    assert "预约已提交" in say(session, "o_li", "确认").replies[0]
    for day in ["明天上午", "后天上午", "大后天上午"]:
        say(session, "o_wang", "预约垃圾上门收集" + day)
        assert "预约已提交" in say(session, "o_wang", "确认").replies[0]
    say(session, "o_wang", "预约垃圾上门收集周六上午")
    assert "已用完" in say(session, "o_wang", "确认").replies[0]


@pytest.mark.parametrize("openid,service,limit_text", [("o_li", "安全检查", "每季度"), ("o_zhao", "宴会厅", "每年")])
def test_quarterly_and_yearly_quotas(demo, session, openid, service, limit_text):
    say(session, openid, f"预约{service}下周一上午")
    assert "预约已提交" in say(session, openid, "确认").replies[0]
    say(session, openid, f"预约{service}下周三上午")
    out = say(session, openid, "确认")
    assert limit_text in out.replies[0] and "已用完" in out.replies[0]


def test_discounts_by_tier(demo, session):
    from handlers.bookings.catalogue import catalogue
    from handlers.bookings.ops import quote_text

    c = catalogue()
    assert "8折后40元" in quote_text(c["gym"], "银卡") and quote_text(c["gym"], "普通") == "50元"
    assert "8.5折后85元" in quote_text(c["appliance_repair"], "金卡")
    assert "9折后90元" in quote_text(c["community_activity"], "普通")
    assert "免费" in quote_text(c["banquet_venue"], "金卡") and "每年1次" in quote_text(c["banquet_venue"], "金卡")
    assert "费用另计" in quote_text(c["private_security"], "金卡")


def test_full_day_offers_next_free_day(demo, session):
    # The banquet hall takes one booking a day.
    say(session, "o_wang", "预约宴会厅10月3日晚上")
    say(session, "o_wang", "确认")
    say(session, "o_zhao", "预约宴会厅10月3日晚上")
    out = say(session, "o_zhao", "确认")
    assert "已约满" in out.replies[0] and "10月4日" in out.replies[0]
    out = say(session, "o_zhao", "10月4日晚上")
    assert "请确认" in out.replies[0]
    assert "预约已提交" in say(session, "o_zhao", "确认").replies[0]


def test_range_takes_first_day_with_room(demo, session):
    say(session, "o_wang", "预约宴会厅10月1日")
    say(session, "o_wang", "确认")
    say(session, "o_zhao", "预约宴会厅国庆期间")
    out = say(session, "o_zhao", "确认")
    assert "预约已提交" in out.replies[0]
    assert bookings(session)[-1].day == date(2026, 10, 2)


def test_cancel_and_change_outside_conversation(demo, session):
    from store.models import QuotaUsage, ServiceCapacity

    say(session, "o_li", "预约安全检查明天上午")
    say(session, "o_li", "确认")
    out = say(session, "o_li", "改到后天下午三点")
    assert "已改期" in out.replies[0] and "9月17日(周四) 15:00" in out.replies[0]
    b = bookings(session)[0]
    caps = {c.day: c.used for c in session.scalars(select(ServiceCapacity))}
    assert caps == {date(2026, 9, 16): 0, date(2026, 9, 17): 1}
    assert "9月17日" in say(session, "o_li", "我的预约").replies[0]
    out = say(session, "o_li", "取消预约")
    assert "已取消" in out.replies[0] and b.state == "cancelled"
    assert session.scalar(select(QuotaUsage)).used == 0  # the quarter's check is available again
    assert out.pushes and "取消" in out.pushes[0].payload["content"]
    assert "没有可以取消" in say(session, "o_li", "取消预约").replies[0]


def test_cancel_inside_conversation(demo, session):
    say(session, "o_li", "预约家政")
    out = say(session, "o_li", "取消预约")
    assert "已取消本次预约" in out.replies[0]
    assert bookings(session) == []


def test_suspended_member_cannot_book_member_services(demo, session):
    from handlers.membership.service import record_breach
    from store.models import Owner

    li = session.scalar(select(Owner).where(Owner.openid == "o_li"))
    record_breach(session, li, "suspend", "违规搭建", "zhuguan_chen", NOW, days=30)
    assert "暂停" in say(session, "o_li", "预约安全检查明天").replies[0]
    say(session, "o_li", "预约家政明天下午")  # open to all: full price while suspended
    out = say(session, "o_li", "确认")
    assert bookings(session)[0].price_fen == 20000


def test_not_bound_owner(demo, session):
    assert "绑定" in say(session, "o_stranger", "预约家政").replies[0]


def _two_sessions_race(env, openids):
    """Each owner, in their own thread and session on the real SQLite file,
    confirms a booking for the same last slot at the same moment."""
    from handlers.bookings import ops
    from handlers.bookings.catalogue import catalogue
    from handlers.zh_datetime import parse_when
    from store.db import session_scope
    from store.models import Owner

    barrier = threading.Barrier(len(openids))
    results: dict[str, object] = {}

    def run(openid):
        try:
            with session_scope() as s:
                o = s.scalar(select(Owner).where(Owner.openid == openid))
                barrier.wait()
                b, text, _ = ops.book(s, o, catalogue()["banquet_venue"], parse_when("10月5日晚上", NOW), "会所", NOW)
                results[openid] = b is not None
                results[openid + ":text"] = text
        except Exception as exc:  # pragma: no cover - shown in the assertion
            results[openid] = exc

    threads = [threading.Thread(target=run, args=(o,)) for o in openids]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    return results


def test_last_slot_race_one_wins(demo):
    from store.db import session_scope
    from store.models import Booking, QuotaUsage, ServiceCapacity, ServiceClock

    for _ in range(3):  # several rounds: the outcome must never be two bookings
        with session_scope() as s:
            for model in (ServiceClock, Booking, ServiceCapacity, QuotaUsage):
                for row in s.scalars(select(model)):
                    s.delete(row)
        results = _two_sessions_race(demo, ["o_wang", "o_zhao"])
        assert sorted(v for k, v in results.items() if ":" not in k) == [False, True], results
        with session_scope() as s:
            assert s.scalar(select(ServiceCapacity)).used == 1
            assert len(list(s.scalars(select(Booking)))) == 1


# --- clocks --------------------------------------------------------------------------------

def test_o2_and_o3_clocks_start_fire_and_are_recorded(demo, session, frozen_clock):
    from handlers.bookings import check_booking_clocks
    from store.models import AuditLog, OutboxMessage, ServiceClock

    t0 = frozen_clock.now()
    say(session, "o_li", "预约家电维修明天下午三点", t0)
    say(session, "o_li", "确认", t0)
    b = bookings(session)[0]
    review = session.scalar(select(ServiceClock).where(ServiceClock.clock == "O2_review"))
    assert review.started_at == t0 and review.due_at == t0 + timedelta(hours=2)

    # O2 review: nothing before 2 h, supervisor at 2 h, manager an hour later, once each.
    assert check_booking_clocks(session, t0 + timedelta(minutes=119)) == []
    p = check_booking_clocks(session, t0 + timedelta(hours=2))
    assert len(p) == 1 and "zhuguan_chen" in p[0].recipient and "服务申请审核" in p[0].payload["content"]
    assert p[0].dedup_key == f"memclock:{review.id}:L1"
    assert check_booking_clocks(session, t0 + timedelta(hours=2, minutes=30)) == []
    p = check_booking_clocks(session, t0 + timedelta(hours=3))
    assert [x.recipient for x in p] == ["jingli_lin"]

    # Approved late: the review clock is recorded as breached; O2 contact starts.
    t1 = t0 + timedelta(hours=3, minutes=5)
    out = click(session, "kefu_xiaomei", f"booking:approve:{b.id}", t1)
    assert review.state == "breached_met" and review.level == 2
    kinds = [(x.kind, x.recipient) for x in out.pushes]
    assert ("text", "o_li") in kinds and ("update_card", "kefu_xiaomei,kefu_ajie") in kinds
    deliver = [x for x in out.pushes if x.kind == "template_card"][0]
    assert deliver.recipient == "weixiu_laozhou|weixiu_xiaoli"
    contact = session.scalar(select(ServiceClock).where(ServiceClock.clock == "O2_contact"))
    assert contact.due_at == t1 + timedelta(hours=1)
    assert check_booking_clocks(session, t1 + timedelta(minutes=59)) == []
    p = check_booking_clocks(session, t1 + timedelta(minutes=60))
    assert "weixiu_laozhou" in p[0].recipient and "审核通过后联系业主" in p[0].payload["content"]
    click(session, "weixiu_laozhou", f"booking:contacted:{b.id}", t1 + timedelta(minutes=70))
    assert contact.state == "breached_met" and b.state == "contacted"

    # Done: O3 starts; it is met only when the owner's feedback message was really sent.
    t2 = t1 + timedelta(hours=24)
    out = click(session, "weixiu_laozhou", f"booking:done:{b.id}", t2)
    from bot.outbound.outbox import add

    for push in out.pushes:
        add(session, push, t2)
    o3 = session.scalar(select(ServiceClock).where(ServiceClock.clock == "O3"))
    assert o3.due_at == t2 + timedelta(hours=2) and b.state == "done"
    feedback = session.scalar(select(OutboxMessage).where(OutboxMessage.dedup_key == f"booking:{b.id}:feedback"))
    assert "打分" in feedback.payload["content"]
    # Not sent (e.g. the 48 h window closed): O3 fires at 2 h.
    p = check_booking_clocks(session, t2 + timedelta(hours=2))
    assert p and "服务完成反馈" in p[0].payload["content"] and "weixiu_laozhou" in p[0].recipient
    feedback.state, feedback.sent_at = "sent", t2 + timedelta(hours=2, minutes=10)
    session.flush()
    assert check_booking_clocks(session, t2 + timedelta(hours=3, minutes=30)) == []
    assert o3.state == "breached_met" and o3.stopped_at == feedback.sent_at
    assert session.scalar(select(AuditLog).where(AuditLog.action == "clock_escalated")) is not None

    # The owner rates it; a low score goes to the supervisor for follow-up.
    out = say(session, "o_li", "2分，师傅迟到了", t2 + timedelta(hours=4))
    assert "感谢" in out.replies[0] and b.rating == 2 and out.pushes[0].recipient == "zhuguan_chen"
    assert "没有待评价" in say(session, "o_li", "评分5", t2 + timedelta(hours=5)).replies[0]


def test_o3_met_in_time(demo, session, frozen_clock):
    from handlers.bookings import check_booking_clocks
    from store.models import ServiceClock

    t0 = frozen_clock.now()
    say(session, "o_wang", "预约会所包间明天晚上", t0)
    say(session, "o_wang", "确认", t0)
    b = bookings(session)[0]
    click(session, "kefu_ajie", f"booking:approve:{b.id}", t0 + timedelta(minutes=30))
    click(session, "kefu_ajie", f"booking:contacted:{b.id}", t0 + timedelta(minutes=40))
    out = click(session, "kefu_ajie", f"booking:done:{b.id}", t0 + timedelta(days=1, hours=13))
    from bot.outbound.outbox import add

    for push in out.pushes:
        row = add(session, push, t0)
        if row and row.dedup_key == f"booking:{b.id}:feedback":
            row.state, row.sent_at = "sent", t0 + timedelta(days=1, hours=13, minutes=1)
    check_booking_clocks(session, t0 + timedelta(days=1, hours=16))
    states = {c.clock: c.state for c in session.scalars(select(ServiceClock))}
    assert states == {"O2_review": "met", "O2_contact": "met", "O3": "met"}


def test_reject_gives_quota_back(demo, session):
    from store.models import QuotaUsage

    say(session, "o_li", "预约安全检查明天上午")
    say(session, "o_li", "确认")
    b = bookings(session)[0]
    out = click(session, "kefu_xiaomei", f"booking:reject:{b.id}")
    assert b.state == "rejected" and session.scalar(select(QuotaUsage)).used == 0
    assert any(p.recipient == "o_li" and "未通过" in p.payload["content"] for p in out.pushes)
    # A second click on the same card does nothing more.
    assert "不能" in click(session, "kefu_xiaomei", f"booking:approve:{b.id}").replies[0]


def test_o1_consultation_clock(demo, session, frozen_clock):
    from handlers.bookings import check_booking_clocks
    from handlers.dispatch import handle
    from handlers.message import Context, Message
    from handlers.membership import on_membership
    from store.models import ServiceClock

    t0 = frozen_clock.now()
    msg = Message(channel="mp", sender="o_zhou", chat="private", text="会员的停车位优先选择具体怎么安排？")
    out = on_membership(Context(session, t0), msg, None)
    assert "10分钟内" in out.replies[0] and out.pushes[0].kind == "template_card"
    clock = session.scalar(select(ServiceClock).where(ServiceClock.clock == "O1"))
    assert clock.due_at == t0 + timedelta(minutes=10)
    assert check_booking_clocks(session, t0 + timedelta(minutes=9)) == []
    p = check_booking_clocks(session, t0 + timedelta(minutes=10))
    assert "咨询首次响应" in p[0].payload["content"]
    key = out.pushes[0].payload["card"]["button_list"][0]["key"]
    handle(Context(session, t0 + timedelta(minutes=12)), Message(channel="wecom", sender="kefu_ajie", chat="staff",
                                                                 kind="event", event="template_card_event",
                                                                 data={"EventKey": key}))
    assert clock.state == "breached_met" and clock.stopped_at == t0 + timedelta(minutes=12)


def test_membership_commands_through_dispatch(demo, session):
    assert "银卡会员" in say(session, "o_li", "我的会员").replies[0]
    r = say(session, "o_xu", "我还差多少升金卡").replies[0]
    assert "升级金卡" in r and "15,000" in r
    from handlers.dispatch import handle

    out = handle(Context(session, NOW), Message(channel="wecom", sender="kefu_xiaomei", chat="staff", text="查会员 1-1201"))
    assert "李秀英" in out.replies[0] and "已记录" in out.replies[0]
    out = handle(Context(session, NOW), Message(channel="wecom", sender="kefu_xiaomei", chat="staff",
                                                text="特殊贡献 1-2202 银卡 组织社区义诊"))
    assert "经理" in out.replies[0]
    out = handle(Context(session, NOW), Message(channel="wecom", sender="jingli_lin", chat="staff",
                                                text="特殊贡献 1-2202 银卡 组织社区义诊"))
    assert "已将杨洋升级为银卡" in out.replies[0]
    out = handle(Context(session, NOW), Message(channel="wecom", sender="zhuguan_chen", chat="staff",
                                                text="会员违规 1-1201 暂停 违规搭建 30天"))
    assert "已记录" in out.replies[0]


def test_cancel_and_change_name_the_booking_by_day(demo, session):
    say(session, "o_wang", "预约家政明天上午")
    say(session, "o_wang", "确认")
    say(session, "o_wang", "预约健身房周五下午")
    say(session, "o_wang", "确认")
    assert "多个预约" in say(session, "o_wang", "改到周日上午").replies[0]
    out = say(session, "o_wang", "把明天的预约改到后天下午三点")
    assert "已改期" in out.replies[0] and "家政保洁" in out.replies[0] and "9月17日(周四) 15:00" in out.replies[0]
    out = say(session, "o_wang", "能不能把预约改到周日 B2")
    assert "已改期" in out.replies[0] and "9月20日(周日)" in out.replies[0]
    out = say(session, "o_wang", "我要取消周日的预约")
    assert "已取消" in out.replies[0] and "健身房" in out.replies[0]
    assert [b.state for b in bookings(session)] == ["requested", "cancelled"]


def test_groups_never_get_personal_membership_or_booking_answers(demo, session):
    from handlers.bookings import on_booking_intent
    from handlers.membership import on_membership

    msg = Message(channel="archive", sender="wm_li", chat="vip", group_id="wr_vip_01", text="我是什么等级的会员")
    assert "私信" in on_membership(Context(session, NOW), msg, None).replies[0]
    msg = Message(channel="archive", sender="wm_li", chat="vip", group_id="wr_vip_01", text="帮我约个家政")
    assert "私信" in on_booking_intent(Context(session, NOW), msg, None).replies[0]


def test_service_hours_and_booking_ahead(demo, session):
    out = say(session, "o_zhao", "预约宴会厅明天晚上")  # the banquet hall is booked 3 days ahead
    assert "至少提前3天" in out.replies[0] and "什么时间" in out.replies[0]
    out = say(session, "o_zhao", "9月18日晚上")
    assert "请确认" in out.replies[0]
    say(session, "o_zhao", "取消")
    out = say(session, "o_li", "预约家政明天晚上九点")
    assert "服务时间为08:00-20:00" in out.replies[0]
    out = say(session, "o_li", "明天晚上七点")
    assert "请确认" in out.replies[0] and "19:00" in out.replies[0]


def test_catalogue_validation_names_file_entry_field():
    from handlers.bookings.catalogue import parse_catalogue
    from handlers.membership.rules import RulesError

    base = {"name": "x", "keywords": [], "tiers": ["金卡"], "duration_minutes": 60, "capacity": 1,
            "team": "t", "location": "home"}
    with pytest.raises(RulesError, match=r"services\.s1: quota\.金卡"):
        parse_catalogue({"services": {"s1": dict(base, quota={"金卡": {"count": 1, "per": "fortnight"}})}}, "svc.yaml")
    with pytest.raises(RulesError, match=r"services\.s1: field 'tiers' names unknown"):
        parse_catalogue({"services": {"s1": dict(base, tiers=["钻石卡"])}}, "svc.yaml")
    with pytest.raises(RulesError, match=r"services\.s1: field 'hours'"):
        parse_catalogue({"services": {"s1": dict(base, hours=["21:00", "08:00"])}}, "svc.yaml")
    with pytest.raises(RulesError, match=r"services\.s1: field 'place'"):
        parse_catalogue({"services": {"s1": dict(base, location="venue")}}, "svc.yaml")


# Each entitlement of seed 000 第五-七条 as the catalogue states it.
ENTITLEMENTS = {
    # service: (tiers allowed, {tier: (count, period)})
    "safety_check": ({"银卡", "金卡"}, {"银卡": (1, "quarter"), "金卡": (1, "quarter")}),
    "rubbish_pickup": ({"银卡", "金卡"}, {"银卡": (1, "week"), "金卡": (3, "week")}),
    "banquet_venue": ({"金卡"}, {"金卡": (1, "year")}),
    "private_security": ({"金卡"}, {}),
    "parking_choice": ({"金卡"}, {"金卡": (1, "year")}),
    "resource_referral": ({"金卡"}, {}),
    "pet_care": ({"银卡", "金卡"}, {}),
    "plant_care": ({"银卡", "金卡"}, {}),
    "gym": ({"普通", "银卡", "金卡"}, {}),
    "housekeeping": ({"普通", "银卡", "金卡"}, {}),
    "community_activity": ({"普通", "银卡", "金卡"}, {}),
}


@pytest.mark.parametrize("key", sorted(ENTITLEMENTS))
def test_each_entitlement_and_quota(demo, session, key):
    from handlers.bookings.catalogue import catalogue
    from handlers.bookings.ops import refusal
    from store.models import Owner

    svc = catalogue()[key]
    tiers, quotas = ENTITLEMENTS[key]
    assert set(svc.tiers) == tiers
    assert {t: (q.count, q.per) for t, q in svc.quota.items()} == quotas
    for openid, tier in (("o_liu", "普通"), ("o_li", "银卡"), ("o_wang", "金卡")):
        o = session.scalar(select(Owner).where(Owner.openid == openid))
        assert (refusal(session, o, svc, NOW) is None) is (tier in tiers), (key, tier)


def test_bare_score_rates_the_finished_service(demo, session):
    say(session, "o_wang", "预约家政明天上午")
    say(session, "o_wang", "确认")
    b = bookings(session)[0]
    click(session, "kefu_ajie", f"booking:approve:{b.id}")
    click(session, "baojie_ayi", f"booking:done:{b.id}")
    out = say(session, "o_wang", "5")
    assert "感谢您的评价（5分）" in out.replies[0] and b.rating == 5 and b.state == "rated"
    # The paid service (200 yuan, 金卡 8.5折) now counts toward the tiers.
    from handlers.membership.service import window_spend

    assert window_spend(session, b.owner, NOW.date()) == 17000


def test_place_can_be_changed_before_confirming(demo, session):
    say(session, "o_li", "预约宠物代管明天上午")
    out = say(session, "o_li", "地点改成会所门口")
    assert "地点：会所门口" in out.replies[0] and "宠物代管" in out.replies[0]
    say(session, "o_li", "确认")
    assert bookings(session)[0].location == "会所门口"
    out = say(session, "o_wang", "预约私人安保在明天下午三点")
    assert "服务地点" in out.replies[0]  # "在明天下午三点" is a time, so the place is still asked


def test_dedicated_agent_for_silver_and_gold(demo, session):
    from handlers.membership import start_consult
    from store.models import Owner

    li = session.scalar(select(Owner).where(Owner.openid == "o_li"))  # 银卡, 1栋
    reply, pushes = start_consult(session, li, "宠物代管可以过夜吗", NOW)
    assert "专属客服小美" in reply and pushes[0].recipient == "kefu_xiaomei"
    liu = session.scalar(select(Owner).where(Owner.openid == "o_liu"))  # 普通: the whole team
    reply, pushes = start_consult(session, liu, "活动怎么报名", NOW)
    assert "专属" not in reply and pushes[0].recipient == "kefu_xiaomei|kefu_ajie"
    assert "专属客服：阿杰" in say(session, "o_huang", "我的会员").replies[0]


def test_quota_race_same_owner_two_devices(demo):
    """One 银卡 owner confirms two weekly rubbish pickups at once (phone and
    tablet): the week's single entitlement is taken once."""
    from handlers.bookings import ops
    from handlers.bookings.catalogue import catalogue
    from handlers.zh_datetime import parse_when
    from store.db import session_scope
    from store.models import Booking, Owner, QuotaUsage

    barrier = threading.Barrier(2)
    results: list[object] = []

    def run(phrase):
        try:
            with session_scope() as s:
                o = s.scalar(select(Owner).where(Owner.openid == "o_li"))
                barrier.wait()
                b, _, _ = ops.book(s, o, catalogue()["rubbish_pickup"], parse_when(phrase, NOW), "1-1201", NOW)
                results.append(b is not None)
        except Exception as exc:  # pragma: no cover
            results.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in ("明天上午", "后天上午")]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert sorted(results) == [False, True], results
    with session_scope() as s:
        assert s.scalar(select(QuotaUsage)).used == 1 and len(list(s.scalars(select(Booking)))) == 1


def test_o1_handing_a_question_to_a_person_starts_the_clock_once(demo, session, frozen_clock):
    """「人工」 or a question the bot cannot answer: a person must respond within
    10 minutes (O1). The clock starts, fires at 10 minutes, and a second message
    while one is waiting does not open another task."""
    from handlers.bookings import check_booking_clocks
    from handlers.dispatch import handle
    from handlers.message import Context, Message
    from store.models import ServiceClock

    t0 = frozen_clock.now()
    out = handle(Context(session, t0), Message(channel="mp", sender="o_zhou", chat="private", text="人工"))
    assert out.intent == "handoff" and "10分钟" in out.replies[0]
    cards = [p for p in out.pushes if p.kind == "template_card"]
    assert cards and "业主要求人工服务" in cards[0].payload["card"]["main_title"]["title"]
    clock = session.scalar(select(ServiceClock).where(ServiceClock.clock == "O1"))
    assert clock.started_at == t0 and clock.due_at == t0 + timedelta(minutes=10)
    again = handle(Context(session, t0 + timedelta(minutes=1)),
                   Message(channel="mp", sender="o_zhou", chat="private", text="转人工"))
    assert not [p for p in again.pushes if p.kind == "template_card"]
    assert session.scalar(select(func.count()).select_from(ServiceClock).where(ServiceClock.clock == "O1")) == 1
    assert check_booking_clocks(session, t0 + timedelta(minutes=9, seconds=59)) == []
    fired = check_booking_clocks(session, t0 + timedelta(minutes=10))
    assert fired and clock.breached_at == t0 + timedelta(minutes=10)
