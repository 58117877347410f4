"""Issue 5 end to end: owners book five services by chatting with the Official
Account webhook (a refused one, a full slot, a change, a cancellation); staff
approve with a WeCom card click; the cards and the owners' messages are in the
fake platform's /_sent."""
from __future__ import annotations

import itertools

import pytest
from sqlalchemy import delete, select

from tests import platform as P

_ids = itertools.count(770001)


_clock = None


@pytest.fixture
def no_replay_window(monkeypatch):
    # Business time is frozen in 2026-09; the platform's CreateTime follows it,
    # so the replay window (checked against the wall clock) is switched off.
    monkeypatch.setenv("GUANJIA_TIMESTAMP_WINDOW_S", "0")


@pytest.fixture
def world(no_replay_window, demo, frozen_clock, app_client, fake_platform):
    global _clock
    from store.db import session_scope

    from store.models import SpendEntry

    with session_scope() as s:  # tests say which spend they need
        s.execute(delete(SpendEntry))
    _clock = frozen_clock
    return app_client, fake_platform


def owner_says(client, openid: str, text: str) -> None:
    # Owners type about once a minute; each message opens a new 48 h window
    # (the platform's 5-messages-per-window limit is keyed by its start).
    _clock.advance(minutes=1)
    q, body = P.mp_text_request(openid, text, msg_id=next(_ids), created=int(_clock.now().timestamp()))
    assert client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    P.drain_queues()


def staff_clicks(client, userid: str, key: str, code: str) -> None:
    q, body = P.wecom_event_request(userid, "template_card_event", {
        "EventKey": key, "TaskId": key.replace(":", "-"), "CardType": "button_interaction", "ResponseCode": code})
    assert client.post("/wecom/app", query_string=q, data=body).status_code == 200
    P.drain_queues()


def to_owner(fp, openid: str) -> list[str]:
    return [c["json"]["text"]["content"] for c in fp.sent("/cgi-bin/message/custom/send")
            if c["json"]["touser"] == openid and c["json"].get("msgtype") == "text"]


def cards(fp) -> list[dict]:
    return [c["json"] for c in fp.sent("/cgi-bin/message/send") if c["json"].get("msgtype") == "template_card"]


def test_booking_conversations_through_the_webhook(world):
    client, fp = world
    from store.db import session_scope
    from store.models import Booking

    # 1. 家政保洁 (银卡 8.5折), slot by slot, confirmed.
    owner_says(client, "o_li", "我想预约")
    owner_says(client, "o_li", "家政保洁")
    owner_says(client, "o_li", "明天下午三点")
    owner_says(client, "o_li", "确认")
    li = to_owner(fp, "o_li")
    assert "哪项服务" in li[0] and "什么时间" in li[1]
    assert "请确认" in li[2] and "9月16日(周三) 15:00" in li[2] and "8.5折后170元" in li[2]
    assert "预约已提交" in li[3]
    review = cards(fp)[-1]
    assert review["touser"] == "kefu_xiaomei|kefu_ajie"
    assert review["template_card"]["main_title"]["title"].startswith("会员服务预约 B")
    key = review["template_card"]["button_list"][0]["key"]
    assert key.startswith("booking:approve:")

    # 2. 上门安全检查 (银卡 quarterly) in one sentence.
    owner_says(client, "o_li", "预约安全检查下周六上午")
    owner_says(client, "o_li", "确认")
    assert "9月26日(周六) 09:00" in to_owner(fp, "o_li")[-2] and "预约已提交" in to_owner(fp, "o_li")[-1]

    # 3. Refused: 普通 owner asks for the 金卡 banquet venue.
    owner_says(client, "o_liu", "预约宴会厅")
    refusal = to_owner(fp, "o_liu")[-1]
    assert "金卡会员专享" in refusal and "升级至金卡" in refusal

    # 4. Full slot: the banquet venue takes one party a day.
    owner_says(client, "o_wang", "预约宴会厅10月3日晚上")
    owner_says(client, "o_wang", "确认")
    owner_says(client, "o_zhao", "预约宴会厅10月3日晚上")
    owner_says(client, "o_zhao", "确认")
    assert "已约满" in to_owner(fp, "o_zhao")[-1] and "10月4日" in to_owner(fp, "o_zhao")[-1]
    owner_says(client, "o_zhao", "10月4日晚上")
    owner_says(client, "o_zhao", "确认")
    assert "预约已提交" in to_owner(fp, "o_zhao")[-1]

    # 5. 游泳池 (银卡 8折), then a change and a cancellation.
    owner_says(client, "o_zhang", "预约游泳明天下午四点")
    owner_says(client, "o_zhang", "确认")
    owner_says(client, "o_zhang", "改到后天下午三点")
    assert "已改期" in to_owner(fp, "o_zhang")[-1] and "9月17日(周四) 15:00" in to_owner(fp, "o_zhang")[-1]
    owner_says(client, "o_zhang", "取消预约")
    assert "已取消" in to_owner(fp, "o_zhang")[-1]
    staff_texts = [c["json"]["text"]["content"] for c in fp.sent("/cgi-bin/message/send")
                   if c["json"].get("msgtype") == "text"]
    assert any("预约改期" in t for t in staff_texts) and any("预约取消" in t for t in staff_texts)

    # 6. 绿植养护 (银卡 custom service) for a fifth booked service.
    owner_says(client, "o_huang", "预约绿植养护周五上午")
    owner_says(client, "o_huang", "确认")
    assert "预约已提交" in to_owner(fp, "o_huang")[-1]

    with session_scope() as s:
        rows = list(s.scalars(select(Booking).order_by(Booking.id)))
        assert [(b.service, b.state) for b in rows] == [
            ("housekeeping", "requested"), ("safety_check", "requested"), ("banquet_venue", "requested"),
            ("banquet_venue", "requested"), ("pool", "cancelled"), ("plant_care", "requested")]

    # Staff approve the first booking from the card: the card is updated for
    # everyone, the delivering team gets its card, the owner is told.
    fp.clear()
    staff_clicks(client, "kefu_xiaomei", key, "rc-booking-0001")
    [upd] = fp.sent("/cgi-bin/message/update_template_card")
    assert upd["json"]["response_code"] == "rc-booking-0001" and "小美已通过" == upd["json"]["button"]["replace_name"]
    assert set(upd["json"]["userids"]) == {"kefu_xiaomei", "kefu_ajie"}
    deliver = cards(fp)[-1]
    assert deliver["touser"] == "baojie_ayi" and "1小时内联系业主" in deliver["template_card"]["main_title"]["title"]
    assert any("审核通过" in m and "1小时内" in m for m in to_owner(fp, "o_li"))


def test_membership_in_chat_and_upgrade_card(world):
    client, fp = world
    owner_says(client, "o_liu", "我的会员")
    assert "普通会员" in to_owner(fp, "o_liu")[-1]
    owner_says(client, "o_liu", "申请升级")
    assert "已提交银卡升级申请" in to_owner(fp, "o_liu")[-1]
    card = cards(fp)[-1]
    key = card["template_card"]["button_list"][0]["key"]
    assert key.startswith("member:approve:")
    staff_clicks(client, "kefu_ajie", key, "rc-member-0001")
    assert "您现在是银卡会员" in to_owner(fp, "o_liu")[-1]
    assert fp.sent("/cgi-bin/message/update_template_card")[-1]["json"]["button"]["replace_name"] == "阿杰已通过"
