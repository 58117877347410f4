"""Issue 14, "intake that helps the owner", through the webhooks: a bare
「我要投诉」 is asked what happened and the answer makes ONE ticket; a complaint
about a staff member's conduct goes to customer service and the supervisor;
cancellations said the way people say them; 中午; staff punctuation."""
from __future__ import annotations


from sqlalchemy import select

from tests import platform as P

owner_says, staff_says, to_owner = P.owner_says, P.staff_says, P.to_owner


def wecom(fake, msgtype: str) -> list[dict]:
    return [c["json"] for c in fake.sent("/cgi-bin/message/send") if c["json"].get("msgtype") == msgtype]


def tickets():
    from store.db import session_scope
    from store.models import Ticket

    with session_scope() as s:
        return [(t.id, t.team, t.kind, t.content, t.state) for t in s.scalars(select(Ticket).order_by(Ticket.id))]


def test_bare_complaint_asks_first_then_one_ticket_to_customer_service_and_supervisor(demo, app_client, fake_platform):
    owner_says(app_client, "o_wang", "我要投诉")
    assert tickets() == []
    [ask] = to_owner(fake_platform, "o_wang")
    assert "发生了什么" in ask
    fake_platform.clear()
    owner_says(app_client, "o_wang", "昨晚门口的保安态度很差，还骂了我")
    [(tid, team, kind, content, state)] = tickets()  # one ticket, with the details
    assert (team, kind, state) == ("customer_service", "complaint", "open")
    assert content == "昨晚门口的保安态度很差，还骂了我"
    [card] = wecom(fake_platform, "template_card")
    assert "baoan_dawei" not in card["touser"]  # not the guard's own team
    assert set(card["touser"].split("|")) <= {"kefu_xiaomei", "kefu_ajie"}
    sup = [m for m in wecom(fake_platform, "text") if m["touser"] == "zhuguan_chen"]
    assert sup and "员工服务投诉" in sup[0]["text"]["content"] and f"T{tid}" in sup[0]["text"]["content"]
    assert any(f"T{tid}" in m for m in to_owner(fake_platform, "o_wang"))


def test_bare_complaint_can_be_cancelled(demo, app_client, fake_platform):
    owner_says(app_client, "o_wang", "你好，我想投诉！")
    owner_says(app_client, "o_wang", "算了")
    assert tickets() == []
    assert "已取消" in to_owner(fake_platform, "o_wang")[-1]


def test_staff_punctuation_reaches_the_owner_unchanged(demo, app_client, fake_platform):
    owner_says(app_client, "o_wang", "厨房水管爆裂了，水漫到客厅，快来人")
    [(tid, *_)] = tickets()
    staff_says(app_client, "weixiu_laozhou", f"接单 T{tid}")
    fake_platform.clear()
    staff_says(app_client, "weixiu_laozhou", f"进度 T{tid} 已关总阀，师傅带配件（约20分钟）到！")
    assert any("已关总阀，师傅带配件（约20分钟）到！" in m for m in to_owner(fake_platform, "o_wang"))


def _book(openid: str, service: str, phrase: str) -> int:
    from ground import clock
    from handlers.bookings import ops
    from handlers.bookings.catalogue import catalogue
    from handlers.zh_datetime import parse_when
    from store.db import session_scope
    from store.models import Owner

    with session_scope() as s:
        o = s.scalar(select(Owner).where(Owner.openid == openid))
        b, _, _ = ops.book(s, o, catalogue()[service], parse_when(phrase, clock.now()), o.room, clock.now())
        return b.id


def _booking_state(bid: int) -> str:
    from store.db import session_scope
    from store.models import Booking

    with session_scope() as s:
        return s.get(Booking, bid).state


def test_cancel_said_loosely_confirms_which_booking(demo, app_client, fake_platform, frozen_clock):
    clean = _book("o_li", "housekeeping", "明天上午")
    fix = _book("o_li", "appliance_repair", "后天下午")
    owner_says(app_client, "o_li", "算了不要保洁了")
    ask = to_owner(fake_platform, "o_li")[-1]
    assert f"B{clean}" in ask and "家政保洁" in ask and "确认" in ask
    assert _booking_state(clean) != "cancelled"  # nothing cancelled before the owner confirms
    owner_says(app_client, "o_li", "确认")
    assert _booking_state(clean) == "cancelled" and _booking_state(fix) != "cancelled"
    assert "已取消预约" in to_owner(fake_platform, "o_li")[-1]


def test_cancel_that_one_with_several_asks_which(demo, app_client, fake_platform, frozen_clock):
    clean = _book("o_li", "housekeeping", "明天上午")
    fix = _book("o_li", "appliance_repair", "后天下午")
    owner_says(app_client, "o_li", "取消那个")
    ask = to_owner(fake_platform, "o_li")[-1]
    assert "哪一个" in ask and f"B{clean}" in ask and f"B{fix}" in ask
    owner_says(app_client, "o_li", f"B{fix}")
    assert _booking_state(fix) == "cancelled" and _booking_state(clean) != "cancelled"


def test_bare_booking_number_asks_to_confirm_and_can_keep_it(demo, app_client, fake_platform, frozen_clock):
    from store.db import session_scope
    from store.models import Consultation

    clean = _book("o_li", "housekeeping", "明天上午")
    owner_says(app_client, "o_li", f"B{clean}")
    assert f"要取消预约 B{clean}" in to_owner(fake_platform, "o_li")[-1]
    owner_says(app_client, "o_li", "不用")
    assert _booking_state(clean) != "cancelled" and "保留" in to_owner(fake_platform, "o_li")[-1]
    with session_scope() as s:  # not a question for a person
        assert s.scalar(select(Consultation)) is None


def test_noon_is_twelve(demo, app_client, fake_platform, frozen_clock):
    owner_says(app_client, "o_li", "预约家政保洁明天中午")
    owner_says(app_client, "o_li", "确认")
    from store.db import session_scope
    from store.models import Booking
    from ground.clock import CST

    with session_scope() as s:
        [b] = s.scalars(select(Booking)).all()
        assert b.start_at.astimezone(CST).strftime("%H:%M") == "12:00"
    assert any("12:00" in m for m in to_owner(fake_platform, "o_li"))


def test_membership_messages_say_things_once_and_never_contradict(demo, app_client, fake_platform):
    owner_says(app_client, "o_wang", "怎么升金卡")  # 金卡 already
    [top] = to_owner(fake_platform, "o_wang")
    assert top.count("最高等级") == 1 and top.count("金卡") == 1
    owner_says(app_client, "o_li", "我的会员")  # 银卡 below the keep-spend, eligible by residence
    [mine] = to_owner(fake_platform, "o_li")
    assert "可能被降级" in mine and "还差1,000元" in mine
    assert "已满足升级" not in mine


def test_conduct_complaint_said_plainly_still_reaches_customer_service(demo, app_client, fake_platform):
    owner_says(app_client, "o_zhao", "门口保安对我很凶")
    [(tid, team, kind, content, state)] = tickets()
    assert (team, kind, content) == ("customer_service", "complaint", "门口保安对我很凶")
    assert any(m["touser"] == "zhuguan_chen" for m in wecom(fake_platform, "text"))
    owner_says(app_client, "o_zhao", "保安的服务态度怎么样？")  # a question, not a complaint
    assert len(tickets()) == 1


def test_never_mind_while_booking_drops_the_draft(demo, app_client, fake_platform, frozen_clock):
    owner_says(app_client, "o_li", "预约家政保洁")
    owner_says(app_client, "o_li", "算了不要保洁了")
    assert "已取消本次预约" in to_owner(fake_platform, "o_li")[-1]


def test_thing_first_cancellation(demo, app_client, fake_platform, frozen_clock):
    clean = _book("o_li", "housekeeping", "明天上午")
    owner_says(app_client, "o_li", "保洁不要了")
    assert f"要取消预约 B{clean}" in to_owner(fake_platform, "o_li")[-1]
    owner_says(app_client, "o_li", "确定")
    assert _booking_state(clean) == "cancelled"
