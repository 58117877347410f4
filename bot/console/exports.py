"""Excel exports where managers keep their records (openpyxl): tickets,
bookings, satisfaction and the knowledge base's unanswered questions.

Times are written in the community's time zone (GUANJIA_TIMEZONE) as plain
Excel date-times (Excel has no time zones), names and labels in Chinese: the
same words as the console's pages, never internal codes.
"""
from __future__ import annotations

import io
from datetime import datetime
from typing import Any, Iterable

from flask import abort, g, request, send_file
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import func, select

from bot.console import bp, labels as L, queries as Q
from bot.console.auth import audit
from bot.console.pages import STATE_LABELS
from bot.console.satisfaction import clocks_by_month, results
from bot.console.views import names, page
from ground import clock
from handlers import privacy, scope
from store.models import Booking, FaqMiss

TIME_FORMAT = "yyyy-mm-dd hh:mm"


def _cell(v: Any) -> Any:
    if isinstance(v, datetime):  # local wall time, no tzinfo: what Excel can hold
        return L.local(v).replace(tzinfo=None)
    return v


def add_sheet(wb: Workbook, title: str, header: list[str], rows: Iterable[list[Any]], empty: str = "暂无数据") -> None:
    ws = wb.create_sheet(title)
    ws.append(header)
    for c in ws[1]:
        c.font = Font(bold=True)
    n = 0
    for row in rows:
        ws.append([_cell(v) for v in row])
        n += 1
    if n == 0:
        ws.append([empty])
    for col in ws.iter_cols(min_row=2):
        for c in col:
            if isinstance(c.value, datetime):
                c.number_format = TIME_FORMAT
    for i, h in enumerate(header, start=1):
        width = max([len(str(h)) * 2] + [min(len(str(c.value or "")) * 2, 60) for c in ws[get_column_letter(i)][1:50]])
        ws.column_dimensions[get_column_letter(i)].width = max(10, width)
    ws.freeze_panes = "A2"


def tickets_book(session, filters: dict, now: datetime) -> Workbook:
    who = names()
    wb = Workbook()
    wb.remove(wb.active)

    stmt = Q.ticket_query(filters, Q.viewer())  # the viewer's scope, numbers masked below a manager
    rows = [privacy.ticket_view(Q.viewer(), t) for t in session.scalars(stmt.limit(5000))]
    if filters.get("late"):
        late = Q.late_ticket_ids(session, now)
        rows = [t for t in rows if t.id in late]
    clocks = Q.clock_views(session, [t.id for t in rows], now, active_only=False)
    add_sheet(wb, "工单", ["编号", "登记时间", "等级", "类别", "类型", "内容", "房号", "楼栋", "状态", "负责人",
                         "接单时间", "到场时间", "完成时间", "办结时间", "处理结果", "评分", "评价", "时限"],
              ([f"T{t.id}", t.created_at, Q.PRIORITY_LABELS.get(t.priority, t.priority), L.category(t.category),
                L.word("kinds", t.kind), t.content, t.room or "", t.building or "", STATE_LABELS.get(t.state, t.state),
                who(t.assignee) if t.assignee else "未接单", t.accepted_at, t.on_site_at, t.completed_at, t.closed_at,
                t.result_note or "", t.survey_score, t.survey_comment or "",
                "；".join(c.chip for c in clocks[t.id])] for t in rows))
    return wb


def bookings_book(session) -> Workbook:
    wb = Workbook()
    wb.remove(wb.active)

    stmt = scope.scoped_by_owner(select(Booking), Booking.owner_id, Q.viewer()) if Booking else None
    rows = session.scalars(stmt.order_by(Booking.start_at.desc()).limit(5000)) if Booking else []
    add_sheet(wb, "预约", ["编号", "服务", "业主", "房号", "开始时间", "结束时间", "地点", "会员等级", "价格（元）",
                         "状态", "评分", "提交时间"],
              ([f"B{b.id}", L.service(b.service), b.owner.name if b.owner else "", b.owner.room if b.owner else "",
                b.start_at, b.end_at, b.location, b.tier, None if b.price_fen is None else round(b.price_fen / 100, 2),
                L.word("booking_states", b.state), b.rating, b.created_at] for b in rows))
    return wb


def satisfaction_book(session, by: str) -> Workbook:
    group_title = {"building": "楼栋", "tier": "会员等级", "category": "类别"}[by]
    wb = Workbook()
    wb.remove(wb.active)
    for source, title in (("tickets", "工单评价"), ("survey", "满意度调查")):
        if source == "survey" and by == "category":
            continue
        series = results(session, source, by)
        add_sheet(wb, title, [group_title, "月份/季度", "平均分", "份数"],
                  ([L.category(s["group"]) if by == "category" else s["group"], p["period"], p["avg"], p["n"]]
                   for s in series for p in s["points"]))
    months = clocks_by_month(session)
    add_sheet(wb, "时限达成", ["月份", "达成", "超时", "达成率"],
              ([m["month"], m["kept"], m["broken"], f"{round(100 * m['kept'] / (m['kept'] + m['broken']))}%"]
               for m in months))
    return wb


def misses_book(session) -> Workbook:
    wb = Workbook()
    wb.remove(wb.active)
    rows = session.execute(
        select(func.max(FaqMiss.id), func.count(), func.min(FaqMiss.created_at), func.max(FaqMiss.created_at))
        .where(FaqMiss.resolved.is_(False)).group_by(FaqMiss.normalized)
        .order_by(func.count().desc(), func.max(FaqMiss.id).desc()).limit(5000)).all()
    def lines():
        for last_id, n, first, last in rows:
            m = session.get(FaqMiss, last_id)
            yield [privacy.for_viewer(Q.viewer(), m.text), n, first, last, L.word("miss_kinds", m.kind),
                   {"private": "私聊", "group": "群聊"}.get(m.chat, "其他")]
    add_sheet(wb, "未回答的问题", ["问题", "次数", "首次提问", "最近提问", "处理", "来源"], lines())
    return wb


EXPORTS = {"tickets": "工单", "bookings": "预约", "satisfaction": "满意度", "misses": "未回答的问题"}


@bp.get("/export/<what>.xlsx")
@page("supervisor")
def export(what: str):
    if what not in EXPORTS:
        abort(404)
    now = clock.now()
    if what == "tickets":
        f = {k: (request.args.get(k) or "").strip()[:64]
             for k in ("state", "priority", "category", "building", "assignee", "q", "late")}
        wb = tickets_book(g.db, f, now)
    elif what == "bookings":
        wb = bookings_book(g.db)
    elif what == "satisfaction":
        by = request.args.get("by") if request.args.get("by") in ("building", "tier", "category") else "building"
        wb = satisfaction_book(g.db, by)
    else:
        wb = misses_book(g.db)
    audit(g.db, g.principal, "console.export", EXPORTS[what], {"kind": EXPORTS[what]})
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    stamp = L.local(now).strftime("%Y%m%d-%H%M")
    return send_file(buf, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     as_attachment=True, download_name=f"{EXPORTS[what]}-{stamp}.xlsx")
