"""Issue 14, photos, voice and location, through the webhook: a photo joins the
owner's open ticket (or asks which, or starts one from the owner's words), the
staff holding it get a card with a link, the file is fetched through the fake
platform's media API and shown on the ticket's console page; a voice message
is handled as its recognised text; a location is kept with the ticket."""
from __future__ import annotations

from itertools import count

from sqlalchemy import select

from tests import platform as P
from tests.console_support import csrf_of, PASSWORD, api  # noqa: F401

_ids = count(950001)


def say(client, openid: str, text: str) -> None:
    q, body = P.mp_text_request(openid, text, msg_id=next(_ids))
    assert client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    P.drain_queues()


def send(client, openid: str, msgtype: str, fields: dict) -> None:
    q, body = P.mp_media_request(openid, msgtype, fields, msg_id=next(_ids))
    assert client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    P.drain_queues()


def photo(client, openid: str, media_id: str) -> None:
    send(client, openid, "image", {"PicUrl": f"http://mmbiz.qpic.cn/{media_id}", "MediaId": media_id})


to_owner = P.to_owner


def media_rows():
    from store.db import session_scope
    from store.models import TicketMedia

    with session_scope() as s:
        return [(m.ticket_id, m.kind, m.state, m.content, m.label, m.latitude) for m in
                s.scalars(select(TicketMedia).order_by(TicketMedia.id))]


def ticket_ids() -> list[int]:
    from store.db import session_scope
    from store.models import Ticket

    with session_scope() as s:
        return [t.id for t in s.scalars(select(Ticket).order_by(Ticket.id))]


def test_photo_after_a_report_attaches_is_fetched_and_announced(demo, app_client, fake_platform):
    say(app_client, "o_wang", "厨房水管爆裂了，水漫到客厅，快来人")
    [tid] = ticket_ids()
    fake_platform.clear()
    photo(app_client, "o_wang", "MEDIA_pipe_1")
    assert any(f"已附到工单T{tid}" in m for m in to_owner(fake_platform, "o_wang"))
    [got] = fake_platform.sent("/cgi-bin/media/get")
    assert got["query"]["media_id"] == "MEDIA_pipe_1"
    [(t, kind, state, content, _, _)] = media_rows()
    assert (t, kind, state) == (tid, "image", "fetched") and content.startswith(b"\xff\xd8") and b"MEDIA_pipe_1" in content
    [card] = [c["json"] for c in fake_platform.sent("/cgi-bin/message/send") if c["json"]["msgtype"] == "textcard"]
    assert "业主发来照片" in card["textcard"]["title"] and f"/console/tickets/{tid}" in card["textcard"]["url"]
    assert card["touser"] == "weixiu_laozhou|weixiu_xiaoli"  # the people the ticket went to


def test_photo_with_no_ticket_asks_what_happened_and_starts_one(demo, app_client, fake_platform):
    photo(app_client, "o_zhao", "MEDIA_lamp_1")
    assert ticket_ids() == [] and "是什么问题" in to_owner(fake_platform, "o_zhao")[-1]
    say(app_client, "o_zhao", "楼道灯坏了，晚上很黑")
    [tid] = ticket_ids()
    [(t, kind, state, *_)] = media_rows()
    assert (t, kind, state) == (tid, "image", "fetched")


def test_photo_with_two_open_tickets_asks_which(demo, app_client, fake_platform):
    say(app_client, "o_wang", "厨房水管爆裂了，水漫到客厅，快来人")
    say(app_client, "o_wang", "楼道灯坏了，晚上很黑")
    first, second = ticket_ids()
    photo(app_client, "o_wang", "MEDIA_lamp_2")
    ask = to_owner(fake_platform, "o_wang")[-1]
    assert "哪一个" in ask and f"T{first}" in ask and f"T{second}" in ask
    assert media_rows() == []
    say(app_client, "o_wang", f"T{second}")
    assert [r[0] for r in media_rows()] == [second]


def test_expired_media_is_recorded_not_a_crash(demo, app_client, fake_platform):
    say(app_client, "o_wang", "厨房水管爆裂了，水漫到客厅，快来人")
    photo(app_client, "o_wang", "expired_media_9")
    [(_, _, state, content, *_)] = media_rows()
    assert state == "failed" and content is None


def test_voice_with_recognition_is_handled_as_its_text(demo, app_client, fake_platform):
    send(app_client, "o_wang", "voice", {"MediaId": "VOICE_1", "Format": "amr",
                                         "Recognition": "厨房水管爆裂了，水漫到客厅，快来人"})
    assert len(ticket_ids()) == 1
    assert any("已为您登记工单" in m for m in to_owner(fake_platform, "o_wang"))


def test_location_is_kept_as_the_tickets_location(demo, app_client, fake_platform):
    say(app_client, "o_wang", "小区东门路灯不亮了")
    [tid] = ticket_ids()
    send(app_client, "o_wang", "location", {"Location_X": "31.2304", "Location_Y": "121.4737", "Scale": "15",
                                            "Label": "幸福小区东门"})
    [(t, kind, state, _, label, lat)] = media_rows()
    assert (t, kind, state, label, lat) == (tid, "location", "none", "幸福小区东门", 31.2304)
    assert any("幸福小区东门" in m and f"T{tid}" in m for m in to_owner(fake_platform, "o_wang"))


def test_ticket_page_shows_the_photo(demo, app_client, fake_platform, api):
    say(app_client, "o_wang", "厨房水管爆裂了，水漫到客厅，快来人")
    [tid] = ticket_ids()
    photo(app_client, "o_wang", "MEDIA_pipe_3")
    c = api.client
    c.post("/console/login", data={"csrf": csrf_of(c), "username": "staff", "password": PASSWORD})
    html = c.get(f"/console/tickets/{tid}").get_data(as_text=True)
    assert 'id="ticket-media"' in html and f"/console/tickets/{tid}/media/1" in html
    img = c.get(f"/console/tickets/{tid}/media/1")
    assert img.status_code == 200 and img.mimetype == "image/jpeg" and b"MEDIA_pipe_3" in img.data
    assert c.get(f"/console/tickets/{tid}/media/99").status_code == 404


def test_voice_without_transcript_joins_the_open_ticket(demo, app_client, fake_platform):
    say(app_client, "o_wang", "厨房水管爆裂了，水漫到客厅，快来人")
    [tid] = ticket_ids()
    send(app_client, "o_wang", "voice", {"MediaId": "VOICE_raw_1", "Format": "amr"})
    [(t, kind, state, *_)] = media_rows()
    assert (t, kind, state) == (tid, "voice", "fetched")
    assert any(f"已附到工单T{tid}" in m for m in to_owner(fake_platform, "o_wang"))


def test_photo_whose_fetch_could_not_be_queued_is_retried_by_the_sweeper(demo, app_client, fake_platform,
                                                                         redis_server, frozen_clock):
    """Redis went down between the photo being handled and its fetch job being queued:
    the row stays pending (nothing lost), the sweeper queues it again once Redis is back."""
    from bot.sweeper import sweep
    from bot.tasks import process_inbox
    from store.db import session_scope
    from store.models import InboxMessage

    say(app_client, "o_wang", "厨房水管爆裂了，水漫到客厅，快来人")
    [tid] = ticket_ids()
    q, body = P.mp_media_request("o_wang", "image", {"PicUrl": "http://mmbiz.qpic.cn/M_retry", "MediaId": "MEDIA_retry_1"},
                                 msg_id=next(_ids))
    assert app_client.post("/wechat/mp", query_string=q, data=body).status_code == 200  # on the lane, not handled
    with session_scope() as s:
        inbox_id = s.scalar(select(InboxMessage.id).order_by(InboxMessage.id.desc()))
    fake_platform.clear()
    redis_server.stop()
    try:
        assert process_inbox(inbox_id) == "done"  # the worker had popped it; Redis dies under it
        assert [r[2] for r in media_rows()] == ["pending"]
        frozen_clock.advance(minutes=1)
        assert sweep()["media"] == 0  # still down: nothing queued, nothing lost
    finally:
        redis_server.start()
    assert fake_platform.sent("/cgi-bin/media/get") == []
    frozen_clock.advance(minutes=1)
    assert sweep()["media"] == 1
    assert sweep()["media"] == 0  # once a minute per photo, not every sweep
    P.drain_queues()
    [got] = fake_platform.sent("/cgi-bin/media/get")
    assert got["query"]["media_id"] == "MEDIA_retry_1"
    [(t, kind, state, content, *_)] = media_rows()
    assert (t, kind, state) == (tid, "image", "fetched") and b"MEDIA_retry_1" in content
    frozen_clock.advance(minutes=5)
    assert sweep()["media"] == 0  # fetched: never again


def test_a_photo_never_fetched_in_three_days_is_marked_failed(demo, app_client, fake_platform, frozen_clock):
    from bot.media_fetch import retry_pending
    from store.db import session_scope
    from store.models import TicketMedia
    from store.models.tickets import TicketEvent

    say(app_client, "o_wang", "厨房水管爆裂了，水漫到客厅，快来人")
    [tid] = ticket_ids()
    with session_scope() as s:
        s.add(TicketMedia(ticket_id=tid, kind="image", channel="mp", sender="o_wang", at=frozen_clock.now(),
                          media_id="MEDIA_old", state="pending"))
    frozen_clock.advance(days=3, minutes=1)
    assert retry_pending() == 0
    [(_, _, state, *_)] = media_rows()
    assert state == "failed"
    with session_scope() as s:
        assert s.scalar(select(TicketEvent.action).where(TicketEvent.ticket_id == tid)
                        .order_by(TicketEvent.id.desc())) == "media_failed"
