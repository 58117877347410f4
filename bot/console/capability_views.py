"""Console queries and pages for the capabilities (membership/bookings,
groups/moderation, campaigns, FAQ)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from flask import flash, g, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import campaigns
from bot.console import bp, group_queries, kb_queries, labels, queries as Q
from bot.console.auth import audit, event_actor
from bot.console.queries import Item
from bot.console.satisfaction import bar_chart, clocks_by_month, line_chart, results
from bot.console.views import page
from ground import clock
from handlers import scope
from handlers.groups import ladder
from handlers.membership.rules import tier_names
from handlers.privacy import for_viewer
from store.models import (Booking, Building, Campaign, Group, GroupSuggestion, MemberApplication, ModerationCase,
                          Owner, Staff, Ticket)


def _cst(dt: datetime | None) -> str:
    return labels.fmt_time(dt)


def unanswered(session: Session, limit: int = 10):
    return kb_queries.open_misses(session, limit)


def pending_bookings(session: Session):
    stmt = select(Booking).where(Booking.state.in_(("requested", "approved"))).order_by(Booking.start_at).limit(30)
    rows = list(session.scalars(scope.scoped_by_owner(stmt, Booking.owner_id, Q.viewer())))
    chips = Q.service_clock_views(session, [f"booking:{b.id}" for b in rows], clock.now())
    return [Item(f"预约 B{b.id} {labels.service(b.service)} · {b.owner.room if b.owner else ''} · "
                 f"{labels.word('booking_states', b.state)}", _cst(b.start_at), b.id,
                 kind=f"booking:{b.state}", clocks=chips[f"booking:{b.id}"]) for b in rows]


def pending_applications(session: Session):
    stmt = select(MemberApplication).where(MemberApplication.state == "pending").order_by(MemberApplication.id).limit(30)
    rows = list(session.scalars(scope.scoped_by_owner(stmt, MemberApplication.owner_id, Q.viewer())))
    chips = Q.service_clock_views(session, [f"application:{a.id}" for a in rows], clock.now())
    return [Item(f"升级申请 M{a.id} {a.owner.room if a.owner else ''} {a.from_tier}→{a.target_tier}",
                 _cst(a.created_at), a.id, kind="application", clocks=chips[f"application:{a.id}"]) for a in rows]


def my_work(session: Session, staff_id: int | None):
    """For a login linked to a staff record (staff open the console from WeCom's
    sidebar): their open tickets and the group replies waiting for them to post."""
    if not staff_id:
        return None

    me = session.get(Staff, staff_id)
    if me is None:
        return None
    items = []

    rows = list(session.scalars(select(Ticket).where(Ticket.assignee == me.userid,
                                                     Ticket.state.in_(Q.OPEN_TICKET_STATES))))
    chips = Q.clock_views(session, [t.id for t in rows], clock.now())
    for t in Q.due_first(rows, chips):  # what is due first, first
        items.append(Item(f"T{t.id} {t.room or ''} {for_viewer(Q.viewer(), t.content)[:30]}", _cst(t.created_at),
                          t.id, kind="ticket", clocks=chips[t.id]))
    for sg in session.scalars(select(GroupSuggestion).where(GroupSuggestion.staff_userid == me.userid,
                                                            GroupSuggestion.state == "pending").order_by(GroupSuggestion.id)):
        items.append(Item(f"群回复待发送：{sg.text[:60]}", _cst(sg.created_at), sg.id, text=sg.text, kind="suggestion"))
    return items


def moderation_waiting(session: Session):
    return group_queries.moderation_waiting(session, Q.viewer())


def waiting_consultations(session: Session, limit: int = 30):
    """Owners waiting for a person (the consultation inbox, handlers/consultations/),
    in the viewer's scope, longest wait first: the question, who holds it, the O1 clock in words."""
    try:
        from handlers.consultations import core

    except ImportError:
        return None
    now = clock.now()
    items = []
    for c in core.listing(session, "waiting", limit=limit, viewer=Q.viewer()):
        row = core.clock_of(session, c)
        chip = core.clock_chip(row, now)
        o = session.get(Owner, c.owner_id) if c.owner_id else None
        who = f"{o.room or ''} {o.name}".strip() if o else "未绑定业主"
        holder = core.staff_name(session, c.holder) if c.holder else "待接手"
        clocks = [Q.ClockView(row.id, "O1", "O1", row.state, row.due_at, chip[1], chip[0].split(" ", 1)[-1],
                              chip[0].split(" ", 1)[0])] if row is not None and chip else []
        items.append(Item(f"{c.number} {who}：{for_viewer(Q.viewer(), c.title)}", _cst(c.last_owner_at or c.created_at),
                          c.id, text=holder, kind="consultation", clocks=clocks))
    return items


# --- Satisfaction ----------------------------------------------------------------------------------

@bp.get("/satisfaction")
@page("supervisor")
def satisfaction():
    by = request.args.get("by") if request.args.get("by") in ("building", "tier", "category") else "building"
    charts = []
    for source, label in (("survey", "季度满意度调查"), ("tickets", "工单评价")):
        if source == "survey" and by == "category":
            continue  # survey answers are about the community, not a category
        series = results(g.db, source, by)
        if by == "category":
            series = [{**x, "group": labels.category(x["group"])} for x in series]
        charts.append((label, Markup(line_chart(series, title=label)), series))
    months = clocks_by_month(g.db)
    return render_template("satisfaction.html", by=by, charts=charts, clock_chart=Markup(bar_chart(months)),
                           months=months)


# --- Announcements ----------------------------------------------------------------------------------

TARGET_LABELS = {"everyone": "全体业主", "buildings": "楼栋", "tiers": "会员等级", "groups": "业主群"}


def _target_text(target: dict) -> str:
    parts = []
    for k, v in (target or {}).items():
        parts.append(TARGET_LABELS.get(k, k) + ("" if v is True else "：" + "、".join(map(str, v))))
    return "；".join(parts)


@bp.get("/announcements")
@page("supervisor")
def announcements():
    rows = list(g.db.scalars(select(Campaign).where(Campaign.kind == "announcement").order_by(Campaign.id.desc()).limit(50)))
    prog = Q.delivery_progress(g.db, [c.id for c in rows])
    reasons = campaigns.failure_reasons(g.db, [c.id for c in rows])
    buildings = list(g.db.scalars(select(Building).order_by(Building.code)))
    groups = list(g.db.scalars(select(Group).where(Group.kind.in_(("vip", "building"))).order_by(Group.id)))
    return render_template("announcements.html", rows=[(c, prog[c.id], _target_text(c.target)) for c in rows],
                           reasons=reasons, buildings=buildings, groups=groups, tiers=tier_names(),
                           obligations=Q.calendar_obligations(g.db))


@bp.post("/announcements")
@page("supervisor")
def announcements_create():
    f = request.form
    text = (f.get("text") or "").strip()
    scope = f.get("scope") or "everyone"
    target: dict = {}
    if scope == "everyone":
        target = {"everyone": True}
    elif scope in ("buildings", "tiers", "groups"):
        chosen = f.getlist(scope)
        if chosen:
            target = {scope: chosen}
    errors = []
    if not text:
        errors.append("请填写公告内容")
    if len(text) > 2000:
        errors.append("公告内容不能超过2000字")
    if not target:
        errors.append("请选择发送对象")
    send_at = None
    if f.get("when") == "later":
        raw = (f.get("send_at") or "").strip()
        try:
            send_at = datetime.fromisoformat(raw).replace(tzinfo=clock.CST)
            if send_at <= clock.now():
                errors.append("发送时间必须晚于现在")
        except ValueError:
            errors.append("请填写发送时间")
    if not errors and f.get("confirmed") != "1":
        # Before anything is sent: who it reaches and how many, to confirm (issue 14).
        try:
            reach = campaigns.audience(g.db, target)
        except campaigns.CampaignError as exc:
            errors.append(str(exc))
        else:
            return render_template("announcement_confirm.html", reach=reach, text=text, form=f,
                                   send_at=_cst(send_at) if send_at else None, emergency=bool(f.get("emergency")),
                                   hint=campaigns.urgency_hint(text))
    if not errors:
        try:
            # Only the 紧急 tick makes an emergency; a word in the text never does (issue 14).
            camp = campaigns.create_announcement(g.db, text, target, at=send_at, emergency=bool(f.get("emergency")),
                                           created_by=g.principal.actor)
        except campaigns.CampaignError as exc:
            errors.append(str(exc))
        else:
            # create_announcement writes the audit row itself (actor = created_by).
            flash(f"公告 #{camp.id} 已{'安排在 ' + _cst(camp.send_at) + ' 发送' if send_at else '开始发送'}", "ok")
            hint = campaigns.urgency_hint(text)
            if hint and not camp.emergency:
                flash(f"内容含「{hint}」，但未勾选紧急：按普通公告发送，免打扰时段（21:00-08:00）内不发给业主，"
                      "顺延到早上。如确属紧急，请取消后勾选紧急重新发送。", "info")
            return redirect(url_for("console.announcements"))
    for e in errors:
        flash(e, "error")
    return redirect(url_for("console.announcements"))


def _on_announcement(view: Callable) -> Callable:
    """A view of one announcement (`campaign_id` in the URL) that gets the announcement; a campaign that is not an announcement is refused, saying so."""
    @functools.wraps(view)
    def wrapper(campaign_id: int):
        camp = g.db.get(Campaign, campaign_id)
        if camp is None or camp.kind != "announcement":
            flash("没有这条公告", "error")
            return redirect(url_for("console.announcements"))
        return view(camp)
    return wrapper


@bp.post("/announcements/<int:campaign_id>/retry")
@page("supervisor")
@_on_announcement
def announcement_retry(camp: Campaign):
    try:
        n = campaigns.retry_failed(g.db, camp.id, retried_by=g.principal.actor)
    except campaigns.CampaignError as exc:
        flash(str(exc), "error")
    else:
        flash(f"公告 #{camp.id}：{n} 条失败的消息已重新发送" if n else f"公告 #{camp.id} 没有失败的消息", "ok")
    return redirect(url_for("console.announcements"))


@bp.post("/announcements/<int:campaign_id>/cancel")
@page("supervisor")
@_on_announcement
def announcement_cancel(camp: Campaign):
    res = campaigns.cancel_announcement(g.db, camp.id, cancelled_by=g.principal.actor)
    if res.get("cancelled"):
        flash(f"公告 #{camp.id} 已取消（已发出 {res.get('sent', 0)}，撤回 {res.get('withdrawn', 0)}）", "ok")
    else:
        flash(f"公告 #{camp.id} 已{res.get('state')}，无法取消", "error")
    return redirect(url_for("console.announcements"))


# --- decisions from Today ------------------------------------------------------------------------------

def _owner_row_visible(M, row_id: int) -> bool:
    """A booking or application that exists and belongs to an owner in the viewer's scope."""
    stmt = select(M.id).where(M.id == row_id)
    return g.db.scalar(scope.scoped_by_owner(stmt, M.owner_id, Q.viewer())) is not None


def _to_today(message: str, category: str):
    flash(message, category)
    return redirect(url_for("console.today"))


def _decided(decide: Callable[[str], str]):
    """Run a decision as the signed-in person (`decide(actor)` returns the sentence to show)
    and go back to Today with that sentence, or with why the decision was refused."""
    try:
        return _to_today(decide(event_actor(g.db, g.principal)), "ok")
    except Q.DecisionError as exc:
        return _to_today(str(exc), "error")


@bp.post("/bookings/<int:booking_id>/<action>")
@page("staff")
def booking_decide(booking_id: int, action: str):
    if (action not in ("approve", "reject", "contacted", "done")
            or not _owner_row_visible(Booking, booking_id)):
        return _to_today("没有这个预约或操作", "error")
    return _decided(lambda actor: Q.booking_action(g.db, booking_id, action, actor, clock.now()))


@bp.post("/applications/<int:application_id>/<decision>")
@page("supervisor")
def application_decide(application_id: int, decision: str):
    if decision not in ("approve", "reject") or not _owner_row_visible(MemberApplication, application_id):
        return _to_today("没有这个申请或操作", "error")
    note = (request.form.get("note") or "").strip()[:200] or None
    return _decided(lambda actor: Q.review_application(g.db, application_id, decision == "approve", actor,
                                                       clock.now(), note))


@bp.post("/strikes/<int:case_id>/<decision>")
@page("staff")
def strike_decide(case_id: int, decision: str):
    """The group's staff admin (or a supervisor) settles a moderation card from the console."""
    case = g.db.get(ModerationCase, case_id)

    if case is None or decision not in ("done", "fp"):
        return _to_today("没有这个群管理事项", "error")
    if not scope.can_see_group(g.db, Q.viewer(), case.group_chat_id):  # not a group of theirs
        return render_template("forbidden.html", need="supervisor"), 403

    actor = event_actor(g.db, g.principal)
    if not (g.principal.at_least("supervisor") or ladder.can_decide(g.db, case.group_chat_id, actor)):
        return render_template("forbidden.html", need="supervisor"), 403
    status = ladder.decide(g.db, clock.now(), case, decision, actor)
    return _to_today({"done": "已处理", "reversed": "已撤销（不算违规）"}.get(status, status), "ok")
