"""A lived-in demo community for the console's page tests and screenshots
(issue 14): tickets registered and handled through the tickets capability
(so their stories and clocks are real), bookings waiting for review, an
upgrade application, moderation cases, unanswered questions and ratings.

`seed(frozen_clock)` leaves the clock at 2026-09-15 09:00 Shanghai, a Tuesday.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from ground.clock import CST

NOW = datetime(2026, 9, 15, 9, 0, tzinfo=CST)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=CST)


def report(text: str, priority: str, category: str, sender: str = "o_li") -> int:
    """An owner's report registered by the tickets capability (the classifier's
    verdict given, so the world does not depend on its wording)."""
    from ground import clock
    from bot.outbound import outbox
    from handlers import registry
    from handlers.dispatch import handle  # noqa: F401  (loads the capabilities)
    from handlers.message import Context, Message
    from handlers.route_result import RouteResult
    from store.db import session_scope
    from store.models import Ticket

    msg = Message(channel="mp", sender=sender, chat="private", text=text, role="owner")
    with session_scope() as s:
        out = registry.get_intent_handler("complaint")(
            Context(s, clock.now()), msg, RouteResult(intent="complaint", priority=priority, category=category))
        for p in out.pushes:
            outbox.add(s, p, clock.now())
        return s.scalar(select(Ticket.id).order_by(Ticket.id.desc()))


def staff_does(fn_name: str, ticket_id: int, userid: str, *args) -> None:
    """A staff action through handlers.tickets.core, as the WeCom command would call it."""
    from ground import clock
    from bot.outbound import outbox
    from handlers.tickets import core
    from store.db import session_scope

    with session_scope() as s:
        res = getattr(core, fn_name)(s, ticket_id, userid, clock.now(), *args)
        assert res.ok, res.message
        for p in res.pushes:
            outbox.add(s, p, clock.now())


def done_and_rated(fc, when: datetime, text: str, category: str, sender: str, staff: str, score: int) -> int:
    """A repair reported at `when`, done within the hour and rated by the owner."""
    from handlers.tickets import survey
    from store.db import session_scope
    from store.models.tickets import Ticket

    fc.set(when)
    tid = report(text, "important", category, sender=sender)
    fc.set(when + timedelta(minutes=10))
    staff_does("accept", tid, staff)
    fc.set(when + timedelta(minutes=50))
    staff_does("complete", tid, staff, "已处理完毕")
    fc.set(when + timedelta(hours=3))
    with session_scope() as s:
        survey.answer(s, s.get(Ticket, tid), sender, score, "", fc.now())
    return tid


def seed(fc) -> dict[str, int]:
    """Fill the demo community (already loaded) with a morning's work."""
    from handlers.tickets import survey
    from store.db import session_scope
    from store.models import Owner
    from store.models.faq import FaqMiss
    from store.models.groups import ModerationCase
    from store.models.membership import Booking, MemberApplication
    from store.models.tickets import Ticket

    ids: dict[str, int] = {}
    # The summer's repairs, rated (the satisfaction page's months).
    for when, text, cat, who, staff, score in (
            (at(2026, 7, 8, 10, 0), "单元门禁刷卡没反应", "facility", "o_chen", "weixiu_xiaoli", 4),
            (at(2026, 7, 20, 14, 0), "卫生间下水慢", "repair", "o_zhou", "weixiu_laozhou", 3),
            (at(2026, 8, 5, 9, 30), "楼道灯不亮", "facility", "o_liu", "weixiu_laozhou", 5),
            (at(2026, 8, 18, 16, 0), "阳台漏水", "repair", "o_wu", "weixiu_xiaoli", 4)):
        done_and_rated(fc, when, text, cat, who, staff, score)
    # Yesterday: a repair done and rated, a complaint rated low (reopened to the supervisor).
    fc.set(at(2026, 9, 14, 10, 0))
    ids["rated"] = report("客厅插座没电了", "important", "repair", sender="o_zhang")
    fc.set(at(2026, 9, 14, 10, 5))
    staff_does("accept", ids["rated"], "weixiu_xiaoli")
    fc.set(at(2026, 9, 14, 10, 40))
    staff_does("on_site", ids["rated"], "weixiu_xiaoli")
    fc.set(at(2026, 9, 14, 11, 10))
    staff_does("complete", ids["rated"], "weixiu_xiaoli", "更换了插座面板，已通电")
    fc.set(at(2026, 9, 14, 12, 0))
    with session_scope() as s:
        survey.answer(s, s.get(Ticket, ids["rated"]), "o_zhang", 5, "师傅很专业", fc.now())
    fc.set(at(2026, 9, 14, 15, 0))
    ids["noise"] = report("楼上装修噪音从早到晚，投诉", "general", "noise", sender="o_wang")
    fc.set(at(2026, 9, 14, 15, 20))
    staff_does("accept", ids["noise"], "baoan_dawei")
    staff_does("progress", ids["noise"], "baoan_dawei", "已上门提醒装修户，中午12点至2点停工")
    # This morning: an urgent leak taken but late on site, an open lift fault, a fresh complaint.
    fc.set(at(2026, 9, 15, 8, 20))
    ids["leak"] = report("厨房水管爆裂了，到处是水", "urgent", "repair", sender="o_li")
    fc.set(at(2026, 9, 15, 8, 22))
    staff_does("accept", ids["leak"], "weixiu_laozhou")
    fc.set(at(2026, 9, 15, 8, 50))
    ids["lift"] = report("2栋电梯按钮失灵，按了没反应", "important", "facility", sender="o_zhao")
    fc.set(at(2026, 9, 15, 8, 58))
    ids["rubbish"] = report("3号垃圾桶两天没人清理，很臭", "general", "sanitation", sender="o_huang")
    fc.set(NOW)
    with session_scope() as s:
        owners = {o.openid: o for o in s.scalars(select(Owner))}
        from handlers import clocks

        for who, service, hours, state, price, asked in (("o_li", "housekeeping", 26, "requested", 17000, 100),
                                                         ("o_wang", "safety_check", 50, "approved", 0, 70),
                                                         ("o_zhao", "gym", 5, "requested", 4000, 10)):
            o = owners[who]
            start = NOW + timedelta(hours=hours)
            b = Booking(owner_id=o.id, service=service, day=start.astimezone(CST).date(), start_at=start,
                        end_at=start + timedelta(hours=2), location=o.home.room if o.home else "会所",
                        tier=o.tier, team="customer_service", state=state, price_fen=price)
            s.add(b)
            s.flush()
            # The review (2 h) or contact (1 h) clock, started when the owner asked / it was approved.
            clocks.start(s, "service", f"booking:{b.id}", "O2_review" if state == "requested" else "O2_contact",
                        NOW - timedelta(minutes=asked), owner_id=o.id, team="customer_service",
                        assignee="kefu_xiaomei")
        s.add(MemberApplication(owner_id=owners["o_xu"].id, from_tier="银卡", target_tier="金卡", basis="spend"))
        s.add(ModerationCase(group_chat_id="wr_vip_01", member_id="wm_zhang", violation="ad", step="warn",
                             why="发布贷款广告", evidence="低息贷款，加微信***"))
        s.add(ModerationCase(group_chat_id="wr_bld_1", member_id="wm_liu", violation="insult", step="mute",
                             strike_total=2, why="辱骂邻居"))
        from faq.normalize import clean

        for text, n in (("快递柜坏了找谁", 3), ("小区里能放风筝吗", 1), ("物业费可以用支付宝交吗", 2)):
            for _ in range(n):
                s.add(FaqMiss(text=text, normalized=clean(text)[:500], chat="private", sender="o_chen",
                              kind="handoff", best_id="prohibited-acts", best_score=0.21,
                              candidates=["prohibited-acts"]))
    return ids
