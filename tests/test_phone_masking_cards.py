"""Issue 13, item 8, on WeCom: what staff receive (work cards, reminders, nudges,
photo notices, booking and consultation cards) shows owners' numbers masked,
a neighbour's number in the owner's words too; the holder gets the number on
purpose (「查看电话」 on the card, or 「电话 T12」), role-checked and logged.
Through the webhooks and the fake platform."""
from __future__ import annotations

import json
from itertools import count

from sqlalchemy import select

from tests import platform as P

_ids = count(963001)
OWNER = "13800000002"  # 李秀英 (demo)
NEIGHBOUR = "13912345678"


def owner_says(client, openid: str, text: str) -> None:
    q, body = P.mp_text_request(openid, text, msg_id=next(_ids))
    assert client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    P.drain_queues()


def staff_says(client, userid: str, text: str) -> None:
    q, body = P.wecom_text_request(userid, text, msg_id=next(_ids))
    assert client.post("/wecom/app", query_string=q, data=body).status_code == 200
    P.drain_queues()


def click(client, userid: str, key: str, code: str = "") -> None:
    q, body = P.wecom_event_request(userid, "template_card_event", {
        "EventKey": key, "TaskId": "x", "CardType": "button_interaction", "ResponseCode": code or f"rc-{next(_ids)}"})
    assert client.post("/wecom/app", query_string=q, data=body).status_code == 200
    P.drain_queues()


def to_staff(fake) -> list[dict]:
    return [c["json"] for c in fake.sent("/cgi-bin/message/send")]


def texts_to(fake, userid: str) -> list[str]:
    return [m["text"]["content"] for m in to_staff(fake) if m.get("msgtype") == "text" and userid in m["touser"].split("|")]


def reveals() -> list[tuple[str, str, str]]:
    from store.db import session_scope
    from store.models import AuditLog

    with session_scope() as s:
        return [(a.actor, a.action, a.target) for a in s.scalars(
            select(AuditLog).where(AuditLog.action.like("phone.%")).order_by(AuditLog.id))]


def test_ticket_cards_and_texts_to_staff_mask_numbers_and_the_holder_reveals_on_purpose(demo, app_client, fake_platform):
    owner_says(app_client, "o_li", f"厨房水管漏水了，楼下邻居说师傅电话{NEIGHBOUR}，快来人看看")
    from store.db import session_scope
    from store.models.tickets import Ticket

    with session_scope() as s:
        t = s.scalars(select(Ticket)).one()
        tid, phone = t.id, t.contact_phone
    assert phone == OWNER
    sent = json.dumps(to_staff(fake_platform), ensure_ascii=False)
    assert sent and OWNER not in sent and NEIGHBOUR not in sent
    [dispatch] = [m["template_card"] for m in to_staff(fake_platform) if m.get("msgtype") == "template_card"]
    fields = {f["keyname"]: f["value"] for f in dispatch["horizontal_content_list"]}
    assert fields["电话"] == "138****0002" and "139****5678" in dispatch["sub_title_text"]
    holder = dispatch and "weixiu_laozhou"
    fake_platform.clear()
    click(app_client, holder, f"ticket:accept:T{tid}")
    [work] = [m["template_card"] for m in to_staff(fake_platform) if m.get("msgtype") == "template_card"]
    assert OWNER not in json.dumps(work, ensure_ascii=False)
    assert {"text": "查看电话", "style": 2, "key": f"phone:T{tid}"} in work["button_list"]
    # the owner nudges: the holder's reminder quotes the report, numbers masked
    fake_platform.clear()
    owner_says(app_client, "o_li", f"催一下 T{tid}")
    [nudge] = texts_to(fake_platform, holder)
    assert "催办" in nudge and NEIGHBOUR not in nudge and "139****5678" in nudge
    # 1栋's staff admin sees the ticket but does not hold it: refused, logged
    fake_platform.clear()
    staff_says(app_client, "kefu_xiaomei", f"电话 T{tid}")
    [refused] = texts_to(fake_platform, "kefu_xiaomei")
    assert OWNER not in refused and "负责人" in refused
    # someone outside its scope: it reads as missing
    fake_platform.clear()
    staff_says(app_client, "baoan_dawei", f"电话 T{tid}")
    assert "没有找到工单" in texts_to(fake_platform, "baoan_dawei")[0]
    # the holder taps 查看电话: the number in the app chat, logged
    fake_platform.clear()
    click(app_client, holder, f"phone:T{tid}")
    [given] = texts_to(fake_platform, holder)
    assert OWNER in given and "李秀英" in given
    assert reveals() == [("kefu_xiaomei", "phone.reveal_refused", f"ticket:{tid}"),
                         (holder, "phone.reveal", f"ticket:{tid}")]
    # the customer-service supervisor (their department) may ask too; a text command works the same
    fake_platform.clear()
    staff_says(app_client, "zhuguan_chen", f"电话 T{tid}")
    assert OWNER in texts_to(fake_platform, "zhuguan_chen")[0]
    fake_platform.clear()
    staff_says(app_client, holder, "帮助")  # the staff menu names the command
    assert "电话 T12" in texts_to(fake_platform, holder)[0]


def test_a_photo_notice_and_a_consultation_card_mask_numbers(demo, app_client, fake_platform):
    owner_says(app_client, "o_li", f"厨房水管漏水了，楼下邻居说师傅电话{NEIGHBOUR}，快来人看看")
    q, body = P.mp_media_request("o_li", "image", {"PicUrl": "http://mmbiz.qpic.cn/x", "MediaId": "MEDIA_mask_1"},
                                 msg_id=next(_ids))
    assert app_client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    P.drain_queues()
    [notice] = [m["textcard"] for m in to_staff(fake_platform) if m.get("msgtype") == "textcard"]
    assert NEIGHBOUR not in notice["description"] and "139****5678" in notice["description"]
    # a consultation: the owner's words (with her own number) and her record on the card, masked
    fake_platform.clear()
    owner_says(app_client, "o_liu", "请问小区附近有没有好的钢琴老师推荐")
    [card] = [m["template_card"] for m in to_staff(fake_platform) if m.get("msgtype") == "template_card"]
    assert {f["keyname"]: f["value"] for f in card["horizontal_content_list"]}["电话"] == "138****0004"
    fake_platform.clear()
    owner_says(app_client, "o_liu", "有的话请打我老公电话13912340000")  # the follow-up reaches the case's staff
    follow = json.dumps(to_staff(fake_platform), ensure_ascii=False)
    assert "C1有新消息" in follow and "13912340000" not in follow and "139****0000" in follow


def test_booking_delivery_card_masks_the_number_and_the_team_reveals_it(demo, app_client, fake_platform):
    from datetime import timedelta

    from ground import clock
    from bot.console.queries import booking_action
    from store.db import session_scope
    from store.models import Owner
    from store.models.membership import Booking

    now = clock.now()
    with session_scope() as s:
        o = s.query(Owner).filter_by(openid="o_li").one()
        b = Booking(owner_id=o.id, service="housekeeping", day=(now + timedelta(days=1)).date(),
                    start_at=now + timedelta(days=1), end_at=now + timedelta(days=1, hours=2), location=o.room,
                    tier="银卡", team="cleaning", state="requested")
        s.add(b)
        s.flush()
        bid = b.id
    with session_scope() as s:
        booking_action(s, bid, "approve", "kefu_xiaomei", now)
    P.drain_queues()
    cards = [m for m in to_staff(fake_platform) if m.get("msgtype") == "template_card"]
    [deliver] = [m["template_card"] for m in cards if "请1小时内联系业主" in m["template_card"]["main_title"]["title"]]
    assert OWNER not in json.dumps(deliver, ensure_ascii=False)
    assert {f["keyname"]: f["value"] for f in deliver["horizontal_content_list"]}["电话"] == "138****0002"
    assert f"phone:B{bid}" in [b["key"] for b in deliver["button_list"]]
    fake_platform.clear()
    click(app_client, "baoan_dawei", f"phone:B{bid}")  # security: not the delivering team
    click(app_client, "baojie_ayi", f"phone:B{bid}")  # cleaning: delivers it
    assert OWNER not in "".join(texts_to(fake_platform, "baoan_dawei"))
    assert OWNER in texts_to(fake_platform, "baojie_ayi")[0]
    assert reveals() == [("baoan_dawei", "phone.reveal_refused", f"booking:{bid}"),
                         ("baojie_ayi", "phone.reveal", f"booking:{bid}")]
