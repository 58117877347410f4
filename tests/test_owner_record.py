"""Issue 14, "the owner record shows the owner's tickets, bookings, spend and tier":
a ticket the owner reported through the webhook, a booking and spend entries, read
by a manager signed in through the console form (with its CSRF token)."""
from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import select

from tests import platform as P
from tests.console_support import PASSWORD, api, csrf_of  # noqa: F401


def test_owner_record_shows_tickets_bookings_spend_and_tier(api, app_client, fake_platform):
    from ground import clock
    from store.db import session_scope
    from store.models import Owner
    from store.models.membership import Booking, SpendEntry
    from store.models.tickets import Ticket

    q, body = P.mp_text_request("o_wang", "厨房水管爆裂了，水漫到客厅，快来人", msg_id=964001)
    assert app_client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    P.drain_queues()
    client = api.client
    now = clock.now()
    with session_scope() as s:
        o = s.scalar(select(Owner).where(Owner.openid == "o_wang"))
        oid = o.id
        s.add(Booking(owner_id=o.id, service="housekeeping", day=(now + timedelta(days=2)).date(),
                      start_at=now + timedelta(days=2), end_at=now + timedelta(days=2, hours=2), location=o.room,
                      tier=o.tier, team="cleaning", state="approved", price_fen=19900))
        s.add(SpendEntry(owner_id=o.id, amount_fen=123450, spent_on=date.today() - timedelta(days=10),
                         category="service", note="家政保洁"))
        tid = s.scalar(select(Ticket.id).where(Ticket.owner_id == o.id))
    assert client.post("/console/login", data={"csrf": csrf_of(client), "username": "manager",
                                               "password": PASSWORD}).status_code == 302
    page = client.get(f"/console/owners/{oid}").get_data(as_text=True)
    tickets = page.split('id="owner-tickets"')[1].split("</section>")[0]
    assert f"T{tid}" in tickets and "水管爆裂" in tickets
    bookings = page.split('id="owner-bookings"')[1].split("</section>")[0]
    assert re.search(r"B\d+ 家政保洁", bookings) and "199.00 元" in bookings
    spend = page.split('id="owner-spend"')[1].split("</section>")[0]
    assert "累计消费" in spend and "<td>1234.50</td>" in spend and "家政保洁" in spend
    assert "金卡" in page.split('id="owner-tier"')[1][:60]
