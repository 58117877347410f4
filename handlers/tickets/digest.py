"""O19: complaints reviewed daily (digest to the supervisor), open ones analysed
weekly, and a monthly analysis. Each builder returns pushes with a dedup key per
period. They are the actions of calendar obligations (`handlers/data/calendar_clocks.yaml`,
`complaint_review_*`), fired by the clock engine's one check."""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from statistics import median

from sqlalchemy import select
from sqlalchemy.orm import Session

from ground.clock import CST
from handlers.clocks import calendar
from handlers.message import Push
from handlers.tickets import core
from handlers.tickets.policy import PRIORITIES, roster, spec_for
from store.models import Ticket, TicketClock


def _md(to: str, content: str, key: str) -> Push:
    return Push(channel="wecom", recipient=to, kind="markdown", payload={"content": content}, dedup_key=key,
                priority=5, source="tickets:digest")


def _late_clocks(session: Session) -> list[TicketClock]:
    return session.scalars(select(TicketClock).where(TicketClock.state == "breached")
                           .order_by(TicketClock.due_at)).all()


def daily_digest(session: Session, now: datetime) -> list[Push]:
    """Open and late tickets, waiting and reopened ones, for the supervisor."""
    day = now.astimezone(CST).date()
    open_ = session.scalars(select(Ticket).where(Ticket.state.in_(core.OPEN_STATES + ("completed",)))
                            .order_by(Ticket.id)).all()
    late = _late_clocks(session)
    since = datetime.combine(day - timedelta(days=1), datetime.min.time(), tzinfo=CST)
    new = session.scalars(select(Ticket).where(Ticket.created_at >= since)).all()
    by_state = Counter(t.state for t in open_)
    lines = [f"**工单日报 {day.isoformat()}**", f"近两日新增 {len(new)} 件；未办结 {len(open_)} 件"
             + ("：" + "，".join(f"{core.STATE_LABELS[s]} {n}" for s, n in sorted(by_state.items())) if open_ else "")]
    if late:
        lines.append(f"> 超时 {len(late)} 项：")
        for c in late[:20]:
            t = session.get(Ticket, c.ticket_id)
            spec = spec_for(t, c.clock)
            lines.append(f"- {t.number} {c.rule} {spec.title if spec else c.clock}"
                         f"（负责人 {core.staff_name(session, t.assignee)}）")
    waiting = [t for t in open_ if t.state == "waiting_home"]
    if waiting:
        lines.append("> 待核对房屋（请电话联系业主）：" + "、".join(t.number for t in waiting))
    reopened = [t for t in open_ if t.state == "reopened"]
    if reopened:
        lines.append("> 业主不满意跟进中：" + "、".join(t.number for t in reopened))
    sup = roster().escalation["supervisor"]
    return [_md(sup, "\n".join(lines), f"tickets:daily:{day.isoformat()}")]


def weekly_review(session: Session, now: datetime) -> list[Push]:
    """Open tickets older than a week, by team: the weekly meeting's list (002 客服 28)."""
    local = now.astimezone(CST)
    year, week, _ = local.isocalendar()
    old = [t for t in session.scalars(select(Ticket).where(Ticket.state.in_(core.OPEN_STATES))).all()
           if (now - t.created_at) >= timedelta(days=7)]
    lines = [f"**未完成工单周分析 {year}-W{week:02d}**", f"超过7天未办结：{len(old)} 件"]
    for team, n in Counter(t.team for t in old).most_common():
        lines.append(f"- {roster().team_label(team)}：{n} 件")
    for t in old[:20]:
        lines.append(f"- {core.describe(session, t)}，已{(now - t.created_at).days}天")
    sup = roster().escalation["supervisor"]
    return [_md(sup, "\n".join(lines), f"tickets:weekly:{year}-W{week:02d}")]


def _month_bounds(now: datetime) -> tuple[datetime, datetime, str]:
    """The previous calendar month in Shanghai time."""
    local = now.astimezone(CST)
    first_this = date(local.year, local.month, 1)
    last_prev = first_this - timedelta(days=1)
    first_prev = date(last_prev.year, last_prev.month, 1)
    start = datetime.combine(first_prev, datetime.min.time(), tzinfo=CST)
    end = datetime.combine(first_this, datetime.min.time(), tzinfo=CST)
    return start, end, f"{first_prev.year}-{first_prev.month:02d}"


def monthly_stats(session: Session, start: datetime, end: datetime) -> dict:
    rows = session.scalars(select(Ticket).where(Ticket.created_at >= start, Ticket.created_at < end)).all()
    ids = [t.id for t in rows]
    clocks = session.scalars(select(TicketClock).where(TicketClock.ticket_id.in_(ids))).all() if ids else []

    def med(values: list[float]) -> float | None:
        return round(median(values), 1) if values else None

    scores = [t.survey_score for t in rows if t.survey_score is not None]
    return {
        "total": len(rows),
        "by_class": {p: sum(t.priority == p for t in rows) for p in PRIORITIES},
        "by_category": dict(Counter(t.category for t in rows)),
        "median_accept_minutes": med([(t.accepted_at - t.created_at).total_seconds() / 60
                                      for t in rows if t.accepted_at]),
        "median_complete_hours": med([(t.completed_at - t.created_at).total_seconds() / 3600
                                      for t in rows if t.completed_at]),
        "satisfaction_avg": round(sum(scores) / len(scores), 2) if scores else None,
        "surveys": len(scores),
        "dissatisfied": sum(s <= 2 for s in scores),
        "reopened": sum(t.reopen_count > 0 for t in rows),
        "clocks_breached": dict(Counter(c.rule for c in clocks if c.breached_at)),
        "clocks_total": len(clocks),
    }


def monthly_summary(session: Session, now: datetime) -> list[Push]:
    """Counts per class and category, median times and satisfaction for last month."""
    start, end, label = _month_bounds(now)
    st = monthly_stats(session, start, end)
    names = {p: core.class_label(p) for p in PRIORITIES}
    lines = [f"**{label} 工单月度分析**",
             f"共 {st['total']} 件：" + "，".join(f"{names[p]} {n}" for p, n in st["by_class"].items()),
             "分类：" + ("，".join(f"{core.CATEGORY_LABELS.get(c, c)} {n}" for c, n in
                                  sorted(st["by_category"].items(), key=lambda x: -x[1])) or "无"),
             f"接单时间中位数：{st['median_accept_minutes'] if st['median_accept_minutes'] is not None else '-'} 分钟；"
             f"办结时间中位数：{st['median_complete_hours'] if st['median_complete_hours'] is not None else '-'} 小时",
             f"满意度：{st['satisfaction_avg'] if st['satisfaction_avg'] is not None else '-'} 分"
             f"（{st['surveys']} 份评价，不满意 {st['dissatisfied']}，重开 {st['reopened']}）",
             "超时：" + ("，".join(f"{r} {n} 次" for r, n in sorted(st["clocks_breached"].items())) or "无")]
    r = roster()
    return [_md(to, "\n".join(lines), f"tickets:monthly:{label}:{to}")
            for to in dict.fromkeys([r.escalation["supervisor"], r.escalation["manager"]])]


def _told(occ, pushes: list[Push]) -> list[Push]:
    """The digest to those the policy's `tell` names (supervisor / manager of the roster)."""
    to = {roster().escalation[t] for t in occ.spec.tell if t in roster().escalation}
    return [p for p in pushes if p.recipient in to]


# The calendar obligations' actions (handlers/clocks/calendar.py): what `does:` names.
calendar.action("ticket_daily_digest")(lambda occ: _told(occ, daily_digest(occ.session, occ.now)))
calendar.action("ticket_weekly_review")(lambda occ: _told(occ, weekly_review(occ.session, occ.now)))
calendar.action("ticket_monthly_summary")(lambda occ: _told(occ, monthly_summary(occ.session, occ.now)))
