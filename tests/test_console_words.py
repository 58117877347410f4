"""The console in the manager's language (issue 14): clock chips by name with
the time left, amber well before a breach, a ticket's story as sentences, the
ticket page's actions doing what the WeCom commands do, times in the
community's time zone, and the words kept as data that refuses unnamed clocks."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from ground.clock import CST
from tests.console_support import csrf_of, PASSWORD, api, make_ticket  # noqa: F401
from tests.console_world import report

RULE_CODE = re.compile(r"(?<![A-Za-z])O\d+")
KEY_VALUE = re.compile(r"[A-Za-z_]+=\S")


def visible_text(html: str) -> str:
    """The text a person sees: no tags, scripts, styles or attribute values."""
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.skip = 0

        def handle_starttag(self, tag, attrs):
            if tag in ("script", "style", "head", "title"):
                self.skip += 1

        def handle_endtag(self, tag):
            if tag in ("script", "style", "head", "title") and self.skip:
                self.skip -= 1

        def handle_data(self, data):
            if not self.skip and data.strip():
                self.parts.append(data.strip())

    p = Text()
    p.feed(html)
    return " ".join(p.parts)


def _login(client, username: str, password: str = PASSWORD):
    client.post("/console/logout", data={"csrf": csrf_of(client, "/console/today")})
    r = client.post("/console/login", data={"csrf": csrf_of(client), "username": username, "password": password})
    assert r.status_code == 302, r.get_data(as_text=True)


def _csrf(client, path: str) -> str:
    """The form token, as a browser gets it: from a form of the page (else this session's)."""
    m = re.search(r'name="csrf" value="([^"]+)"', client.get(path).get_data(as_text=True))
    if m:
        return m.group(1)
    with client.session_transaction() as sess:
        return sess.setdefault("csrf", "token-of-an-earlier-form")


def test_clock_chips_name_the_clock_and_the_time_left(api, frozen_clock):
    from ground import clock
    from bot.console import queries as Q
    from store.db import session_scope
    from store.models.tickets import TicketClock

    t = report("物业服务态度太差了，投诉", "general", "other", sender="o_wang")
    with session_scope() as s:
        clocks = {c.clock: c for c in s.scalars(select(TicketClock).where(TicketClock.ticket_id == t))}
        assert "first_reply" in clocks  # a complaint: O4's 24-hour first reply
    frozen_clock.advance(minutes=1)
    with session_scope() as s:
        views = Q.clock_views(s, [t], clock.now())[t]
        chips = [v.chip for v in views]
        assert "首次回复 剩余23小时" in chips
        assert len(chips) == len({v.name for v in views})  # one chip per clock
        assert not any(RULE_CODE.search(c) for c in chips)
    # An urgent repair: on site within 15 minutes; one minute late reads so.
    u = report("厨房水管爆裂了，到处是水", "urgent", "repair")
    frozen_clock.advance(minutes=16)
    with session_scope() as s:
        views = {v.name: v for v in Q.clock_views(s, [u], clock.now())[u]}
        assert views["on_site"].chip == "到场 超时1分钟" and views["on_site"].color == "red"
    _login(api.client, "supervisor")
    html = api.client.get(f"/console/tickets/{u}").get_data(as_text=True)
    text = visible_text(html)
    assert "到场 超时1分钟" in text and not RULE_CODE.search(text) and not KEY_VALUE.search(text)


def test_one_chip_per_clock_when_a_ticket_runs_it_again(api, frozen_clock):
    from ground import clock
    from bot.console import queries as Q
    from store.db import session_scope
    from store.models.tickets import TicketClock

    with session_scope() as s:
        t = make_ticket(s, minutes_ago=30, state="reopened", assignee="weixiu_laozhou")
        now = clock.now()
        # The reopened round runs the on-site clock again next to the first, broken one.
        s.add(TicketClock(ticket_id=t.id, clock="on_site", rule="O5", round=1, started_at=now,
                          due_at=now + timedelta(minutes=15), state="running"))
        s.flush()
        views = Q.clock_views(s, [t.id], now)[t.id]
        assert [v.chip for v in views] == ["到场 剩余15分钟"]


@pytest.mark.parametrize("span, left, colour", [
    (timedelta(minutes=15), timedelta(minutes=1), "amber"),    # 1 minute left is never green
    (timedelta(minutes=15), timedelta(minutes=6), "green"),
    (timedelta(minutes=5), timedelta(minutes=4), "amber"),     # short clocks: amber from min_minutes
    (timedelta(hours=24), timedelta(hours=5), "amber"),        # a quarter of the span
    (timedelta(hours=24), timedelta(hours=7), "green"),
    (timedelta(hours=24), -timedelta(minutes=1), "red"),
])
def test_amber_comes_well_before_a_breach(frozen_clock, span, left, colour):
    from ground import clock
    from bot.console.labels import clock_color

    now = clock.now()
    due = now + left
    assert clock_color("running", due - span, due, None, now) == colour


@pytest.mark.parametrize("left, words", [
    (timedelta(hours=23, minutes=59), "剩余23小时"), (timedelta(hours=2, minutes=15), "剩余2小时15分钟"),
    (timedelta(days=3, hours=2, minutes=5), "剩余3天2小时"), (timedelta(seconds=40), "剩余不到1分钟"),
    (-timedelta(seconds=20), "刚刚超时"), (-timedelta(minutes=1), "超时1分钟"), (-timedelta(hours=3), "超时3小时"),
])
def test_time_left_in_words(frozen_clock, left, words):
    from bot.console.labels import time_left

    now = frozen_clock.now()
    assert time_left(now + left, now) == words


def test_every_clock_has_a_name():
    from bot.console import labels

    assert labels.missing_clock_names() == []


def test_amber_thresholds_are_data(frozen_clock, monkeypatch, tmp_path):
    from bot.console import labels

    text = labels.LABELS_FILE.read_text(encoding="utf-8").replace("min_minutes: 5", "min_minutes: 0")
    path = tmp_path / "display_labels.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(labels, "LABELS_FILE", path)
    labels.labels.cache_clear()
    try:
        now = frozen_clock.now()
        assert labels.clock_color("running", now - timedelta(minutes=1), now + timedelta(minutes=4), None, now) == "green"
        path.write_text(text.replace("  first_reply: 首次回复\n", ""), encoding="utf-8")
        labels.labels.cache_clear()
        # A clock without a name is reported and falls back to its clocks.yaml title, never its id.
        assert labels.missing_clock_names() == ["first_reply"]
        assert labels.clock_name("first_reply") == "投诉24小时内初步回复"
        path.write_text(text.replace("min_minutes: 0", "min_minutes: soon"), encoding="utf-8")
        labels.labels.cache_clear()
        with pytest.raises(labels.LabelsError, match="amber"):  # a malformed file is refused, naming the field
            labels.labels()
    finally:
        labels.labels.cache_clear()


def test_ticket_story_and_actions_like_the_wecom_commands(api, frozen_clock):
    from bot.console.auth import create_user
    from store.db import session_scope
    from store.models import OutboxMessage
    from store.models.tickets import Ticket, TicketClock, TicketEvent

    with session_scope() as s:
        create_user(s, "laozhou", "老周", "staff", PASSWORD, "weixiu_laozhou", hash_method="pbkdf2:sha256:1000")
    frozen_clock.set(datetime(2026, 9, 15, 18, 0, tzinfo=CST))
    t = report("卫生间水管漏水，麻烦派人来修", "important", "repair")
    frozen_clock.advance(minutes=1)
    c = api.client
    _login(c, "laozhou")
    page = f"/console/tickets/{t}"
    r = c.post(f"{page}/act/accept", data={"csrf": _csrf(c, page)})
    assert r.status_code == 302
    html = c.get(page).get_data(as_text=True)
    assert "您已接单T" in html  # the same words as 「接单 T12」 in WeCom
    story = visible_text(html.split('id="ticket-events"')[1])
    assert "18:01 老周接单" in story and "业主李秀英报告问题" in story
    assert not KEY_VALUE.search(story) and not RULE_CODE.search(story)
    frozen_clock.advance(minutes=30)
    _login(c, "laozhou")  # 30 idle minutes end a console session (issue 13): sign in again
    c.post(f"{page}/act/progress", data={"csrf": _csrf(c, page), "note": "已关闭总阀，配件明早到"})
    frozen_clock.advance(hours=14)
    _login(c, "laozhou")
    c.post(f"{page}/act/complete", data={"csrf": _csrf(c, page), "note": "已更换水管接头，试水正常"})
    with session_scope() as s:
        tk = s.get(Ticket, t)
        assert tk.state == "completed" and tk.assignee == "weixiu_laozhou" and tk.result_note == "已更换水管接头，试水正常"
        actions = [e.action for e in s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == t))]
        assert {"accepted", "progress", "completed", "result_sent"} <= set(actions)
        owner_texts = [o.payload.get("content", "") for o in s.scalars(select(OutboxMessage).where(
            OutboxMessage.recipient == "o_li"))]
        assert any("已关闭总阀" in x for x in owner_texts) and any("已更换水管接头" in x for x in owner_texts)
    # Someone else's ticket: a staff login cannot complete it (首问负责).
    other = report("2栋电梯按钮失灵", "important", "facility", sender="o_zhao")
    _login(c, "staff")
    opage = f"/console/tickets/{other}"
    c.post(f"{opage}/act/accept", data={"csrf": _csrf(c, opage)})
    _login(c, "laozhou")
    html = c.get(opage).get_data(as_text=True)
    assert 'id="complete-form"' not in html  # not his: no 完成 on the page
    c.post(f"{opage}/act/complete", data={"csrf": _csrf(c, opage), "note": "修好了"})  # and refused if posted
    r = c.get(opage)  # refused: outside his scope the ticket reads as missing, inside it 首问负责 says no
    assert r.status_code == 404 or "首问负责制" in r.get_data(as_text=True)
    with session_scope() as s:
        assert s.get(Ticket, other).state != "completed"
    # A supervisor closes it with a reason: clocks stop, the owner is told.
    _login(c, "supervisor")
    c.post(f"{opage}/close", data={"csrf": _csrf(c, opage), "reason": "重复报修"})
    with session_scope() as s:
        assert s.get(Ticket, other).state == "closed"
        assert not list(s.scalars(select(TicketClock).where(TicketClock.ticket_id == other,
                                                            TicketClock.state.in_(("running", "breached")))))
        assert any("已办结：重复报修" in (o.payload.get("content") or "") for o in s.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient == "o_zhao")))
    assert "工单办结（重复报修）" in visible_text(c.get(opage).get_data(as_text=True))


def test_ticket_list_is_due_first_with_the_creation_time(api, frozen_clock):
    from store.db import session_scope

    with session_scope() as s:
        later = make_ticket(s, minutes_ago=1, priority="general", clock_minutes=600, content="草坪需要修剪").id
        sooner = make_ticket(s, minutes_ago=10, clock_minutes=15, content="楼道水管爆裂").id
        late = make_ticket(s, minutes_ago=40, clock_minutes=15, content="地下室进水").id
    _login(api.client, "staff")
    html = api.client.get("/console/tickets").get_data(as_text=True)
    order = [int(x) for x in re.findall(r'<tr class="\w+" data-ticket="(\d+)"', html)]
    assert order.index(late) < order.index(sooner) < order.index(later)
    row = html.split(f'data-ticket="{later}"')[1].split("</tr>")[0]
    assert "08:59" in row  # registered a minute before 09:00, shown in local time


def test_times_follow_the_community_time_zone(api, frozen_clock, monkeypatch):
    from ground.config import reset_settings
    from store.db import session_scope

    with session_scope() as s:
        tid = make_ticket(s, minutes_ago=0, priority="general", clock_minutes=600).id
    _login(api.client, "staff")
    assert "09:00" in api.client.get(f"/console/tickets/{tid}").get_data(as_text=True)
    monkeypatch.setenv("GUANJIA_TIMEZONE", "Asia/Tokyo")  # one hour ahead of Shanghai
    reset_settings()
    html = api.client.get(f"/console/tickets/{tid}").get_data(as_text=True)
    assert "2026-09-15 10:00" in html and "2026-09-15 09:00" not in html
