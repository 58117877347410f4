"""Issue 4 end to end: an owner's OA message through the webhook creates a
ticket; a staff member's encrypted template_card_event accepts it; the card
update and the owner's progress message reach the (fake) platform."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tests import platform as P

COMPLAINT = "厨房水管爆裂了，水漫到客厅，快来人"


def test_owner_message_to_card_click_through_the_webhook(demo, app_client, fake_platform):
    from handlers.router import route

    if route(COMPLAINT).intent != "complaint":  # the classifier is another capability's
        pytest.skip("the intent classifier is not installed yet")
    from store.db import session_scope
    from store.models import Ticket

    q, body = P.mp_text_request("o_wang", COMPLAINT, msg_id=880001)
    assert app_client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    P.drain_queues()
    with session_scope() as s:
        [t] = s.scalars(select(Ticket)).all()
        assert (t.state, t.priority, t.room) == ("open", "urgent", "1-0801")
        tid = t.id
    cards = [c for c in fake_platform.sent("/cgi-bin/message/send") if c["json"].get("msgtype") == "template_card"]
    assert cards and cards[0]["json"]["touser"] == "weixiu_laozhou|weixiu_xiaoli"
    card = cards[0]["json"]["template_card"]
    assert card["task_id"] == f"T{tid}v1" and card["button_list"][0]["key"] == f"ticket:accept:T{tid}"
    owner_msgs = [c["json"]["text"]["content"] for c in fake_platform.sent("/cgi-bin/message/custom/send")]
    assert any(f"T{tid}" in m for m in owner_msgs)  # the ticket number at once
    fake_platform.clear()

    q, body = P.wecom_event_request("weixiu_laozhou", "template_card_event", {
        "EventKey": f"ticket:accept:T{tid}", "TaskId": f"T{tid}v1", "CardType": "button_interaction",
        "ResponseCode": "rc-click-0001"})
    assert app_client.post("/wecom/app", query_string=q, data=body).status_code == 200
    P.drain_queues()
    [upd] = fake_platform.sent("/cgi-bin/message/update_template_card")
    assert upd["json"]["response_code"] == "rc-click-0001"
    assert upd["json"]["button"]["replace_name"] == "老周已接单"
    assert set(upd["json"]["userids"]) == {"weixiu_laozhou", "weixiu_xiaoli"}
    owner_msgs = [c["json"] for c in fake_platform.sent("/cgi-bin/message/custom/send")]
    assert any(m["touser"] == "o_wang" and "老周受理" in m["text"]["content"] for m in owner_msgs)
    with session_scope() as s:
        assert s.get(Ticket, tid).assignee == "weixiu_laozhou"
