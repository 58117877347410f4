"""Every console page a manager can reach, on a lived-in demo community, reads
in words (issue 14): no rule code (O followed by digits), no key=value or dict dump,
no raw openid in the visible text, and no page errors."""
from __future__ import annotations

import re
from urllib.parse import urldefrag, urlparse

from tests.console_support import csrf_of, PASSWORD, api  # noqa: F401
from tests.test_console_words import visible_text

RULE_CODE = re.compile(r"(?<![A-Za-z])O\d+")
KEY_VALUE = re.compile(r"[A-Za-z_]+=\S")
DICT_DUMP = re.compile(r"[{\[]\s*'\w+'")  # a Python dict or list printed as is
OPENID = re.compile(r"\b(?:o_|wm_)[a-z]+\b")  # the demo community's openids / external userids
SKIP = ("/console/static/", "/console/export/", "/console/logout")


def crawl(client, start: str = "/console/today", limit: int = 120) -> dict[str, str]:
    """path -> html of every console page reachable by links from `start`."""
    seen: dict[str, str] = {}
    todo = [start]
    while todo and len(seen) < limit:
        path = todo.pop(0)
        if path in seen:
            continue
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        html = r.get_data(as_text=True)
        seen[path] = html
        for href in re.findall(r'href="([^"]+)"', html):
            href = urldefrag(href.replace("&amp;", "&"))[0]
            u = urlparse(href)
            if u.netloc or not u.path.startswith("/console/") or href.startswith(SKIP):
                continue
            if href not in seen and href not in todo:
                todo.append(href)
    return seen


def offending(text: str) -> list[str]:
    return [m.group(0) for rx in (RULE_CODE, KEY_VALUE, DICT_DUMP, OPENID) for m in rx.finditer(text)]


def test_every_console_page_reads_in_words(api, frozen_clock):
    from sqlalchemy import select

    from store.db import session_scope
    from store.models import Owner
    from tests.console_world import seed

    ids = seed(frozen_clock)
    from store.models import AuditLog

    with session_scope() as s:  # rows as the capabilities write them: openids, chat ids, dicts
        s.add(AuditLog(actor="o_xu", action="member_apply", target="application:1", detail={"target_tier": "金卡"}))
        s.add(AuditLog(actor="o_li", action="booking_cancel", target="booking:1", detail={"from": "requested"}))
        s.add(AuditLog(actor="bot", action="moderation.warn", target="wr_vip_01/wm_zhang",
                       detail={"violation": "ad", "strikes": 1}))
        s.add(AuditLog(actor="weixiu_laozhou", action="staff_group.create", target="wr_staff_x",
                       detail={"members": ["weixiu_laozhou", "o_wang"]}))
    c = api.client
    assert c.post("/console/login", data={"csrf": csrf_of(c), "username": "manager", "password": PASSWORD}).status_code == 302
    with session_scope() as s:
        li = s.scalar(select(Owner).where(Owner.openid == "o_li")).id
    pages = crawl(c)
    # Pages reached by a search or a filter, not only by links.
    for extra in ("/console/owners?q=李", f"/console/owners/{li}", "/console/tickets?state=closed",
                  "/console/tickets?late=1&state=open", "/console/satisfaction?by=category",
                  "/console/satisfaction?by=tier", "/console/kb?all=1", "/console/audit"):
        pages.update(crawl(c, extra, limit=1))
    for tid in ids.values():
        pages.update(crawl(c, f"/console/tickets/{tid}", limit=1))
    assert {"/console/today", "/console/tickets", "/console/roster", "/console/audit", "/console/kb",
            "/console/satisfaction"} <= set(pages)
    bad = {path: found for path, html in pages.items() if (found := offending(visible_text(html)))}
    assert bad == {}, bad
    # The words are the manager's: a sample of what the pages say.
    everything = " ".join(visible_text(h) for h in pages.values())
    for words in ("到场 超时", "老周接单", "家政保洁", "广告 → 警告", "辱骂 → 禁言", "维修", "查看业主档案",
                  "问过3次", "预约审核 剩余20分钟", "联系业主 超时10分钟"):
        assert words in everything, words
    audit = visible_text(pages["/console/audit"])
    assert "业主徐静" in audit and "升级申请 M1" in audit and "尊享业主VIP群 · 业主张伟" in audit
    assert "违规：广告" in audit and "原：待审核" in audit and "成员：老周、业主王建国" in audit
    roster = visible_text(pages["/console/roster"])
    assert ".yaml" not in roster and "handlers/" not in roster


def test_the_crawl_would_see_codes_and_dumps():
    # What the pages used to show (issue 14) is caught; the words that replaced it are not.
    assert offending("T12 O5 剩余3分钟") == ["O5"]
    assert offending("接单 priority=urgent due_at=2026-09-15") == ["priority=u", "due_at=2"]
    assert offending("{'from': 'weixiu_laozhou'}") == ["{'from'"]
    assert offending("操作人 o_li") == ["o_li"]
    assert offending("18:01 老周接单 · 首次回复 剩余23小时 · 广告 → 警告 · T12 · B3") == []
