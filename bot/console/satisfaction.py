"""Satisfaction over time (scores per building, category, tier) and clocks
kept vs broken per month, with the charts drawn as inline SVG on the server
(no JS chart library: the console has no build step and no CDN access)."""
from __future__ import annotations

from collections import defaultdict
from html import escape

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console.labels import tz
from store.models import Clock, Owner, SurveyAnswer, Ticket

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def results(session: Session, source: str, by: str, survey: str = "satisfaction") -> list[dict]:
    """[{"group": key, "points": [{"period", "avg", "n"}...]}...]."""
    acc: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    if source == "survey":
        for a in session.scalars(select(SurveyAnswer).where(SurveyAnswer.survey == survey)):
            key = {"building": a.building_code, "tier": a.tier}.get(by, "全部") or "未知"
            acc[key][a.period].append(a.score)
    else:
        rows = session.execute(select(Ticket, Owner.tier).outerjoin(Owner, Ticket.owner_id == Owner.id)
                               .where(Ticket.survey_score.is_not(None)))
        for t, tier in rows:
            when = t.completed_at or t.created_at
            period = when.astimezone(tz()).strftime("%Y-%m")
            key = {"building": t.building, "tier": tier, "category": t.category}.get(by, "全部") or "未知"
            acc[key][period].append(t.survey_score)
    return [{"group": k, "points": [{"period": p, "avg": round(sum(v) / len(v), 2), "n": len(v)}
                                    for p, v in sorted(periods.items())]}
            for k, periods in sorted(acc.items())]


def clocks_by_month(session: Session) -> list[dict] | None:
    """Per month (of the deadline): clocks kept (met) and broken (late / breached)."""
    acc: dict[str, dict[str, int]] = defaultdict(lambda: {"kept": 0, "broken": 0})
    # Every clock of every kind (tickets' O4-O11, services' O1-O3): one table.
    for c in session.scalars(select(Clock).where(Clock.state.in_(("met", "late", "breached_met", "breached")))):
        month = c.due_at.astimezone(tz()).strftime("%Y-%m")
        acc[month]["kept" if c.state == "met" else "broken"] += 1
    return [{"month": m, **v} for m, v in sorted(acc.items())]


# --- SVG -----------------------------------------------------------------------------------------

EMPTY = '<p class="muted empty">还没有评分。业主给出评分后，这里按期显示平均分和份数。</p>'


def line_chart(series: list[dict], y_max: float = 5.0, title: str = "") -> str:
    """Average score per period, one line per group; every point says its average
    and how many answers it stands on (one answer is not a trend)."""
    periods = sorted({p["period"] for s in series for p in s["points"]})
    if not periods:
        return EMPTY
    w, h, left, bottom, top = 600, 280, 34, 44, 40
    inset = 50  # room for the first and last point's label and period
    pw, ph = w - left - 2 * inset, h - bottom - top
    step = pw / max(len(periods) - 1, 1)
    x = {p: left + inset + (i * step if len(periods) > 1 else pw / 2) for i, p in enumerate(periods)}
    few = sum(len(s["points"]) for s in series) <= 12  # room to write every point's numbers

    def y(v: float) -> float:
        return top + ph - (v / y_max) * ph

    parts = [f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">']
    for tick in range(int(y_max) + 1):
        parts.append(f'<line x1="{left}" x2="{w - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e5e5"/>'
                     f'<text x="{left - 8}" y="{y(tick) + 5:.1f}" text-anchor="end">{tick}</text>')
    for p in periods:
        parts.append(f'<text x="{x[p]:.1f}" y="{h - bottom + 22}" text-anchor="middle">{escape(p)}</text>')
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        pts = " ".join(f"{x[pt['period']]:.1f},{y(pt['avg']):.1f}" for pt in s["points"])
        if len(s["points"]) > 1:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2.5" points="{pts}"/>')
        for pt in s["points"]:
            cx, cy = x[pt["period"]], y(pt["avg"])
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{color}">'
                         f'<title>{escape(str(s["group"]))} {escape(pt["period"])}：{pt["avg"]}分（{pt["n"]}份）</title></circle>')
            if few:
                parts.append(f'<text class="point" x="{cx:.1f}" y="{cy - 10 if i % 2 == 0 else cy + 22:.1f}" text-anchor="middle" '
                             f'fill="{color}">{pt["avg"]:g}分·{pt["n"]}份</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(str(s["group"]))}'
                     f'（共{sum(p["n"] for p in s["points"])}份）</span>' for i, s in enumerate(series))
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def bar_chart(rows: list[dict]) -> str:
    """Stacked bars per month: clocks kept (green) and broken (red), each with its count."""
    if not rows:
        return '<p class="muted empty">还没有到期的时限。工单的时限到期或完成后，这里按月统计达成与超时。</p>'
    w, h, left, bottom, top = 600, 260, 34, 44, 24
    pw, ph = w - left - 10, h - bottom - top
    peak = max(r["kept"] + r["broken"] for r in rows) or 1
    bw = min(pw / len(rows), 120)
    parts = [f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="时限达成" xmlns="http://www.w3.org/2000/svg">']
    parts.append(f'<text x="{left - 8}" y="{top + 5}" text-anchor="end">{peak}</text>'
                 f'<text x="{left - 8}" y="{top + ph + 5}" text-anchor="end">0</text>'
                 f'<line x1="{left}" x2="{w - 10}" y1="{top + ph}" y2="{top + ph}" stroke="#ccc"/>')
    for i, r in enumerate(rows):
        x0 = left + i * bw + bw * 0.15
        kh, bh = ph * r["kept"] / peak, ph * r["broken"] / peak
        mid = x0 + bw * 0.35
        parts.append(f'<rect x="{x0:.1f}" y="{top + ph - kh:.1f}" width="{bw * 0.7:.1f}" height="{kh:.1f}" fill="#2e7d32">'
                     f'<title>{r["month"]} 达成 {r["kept"]}</title></rect>')
        parts.append(f'<rect x="{x0:.1f}" y="{top + ph - kh - bh:.1f}" width="{bw * 0.7:.1f}" height="{bh:.1f}" fill="#c62828">'
                     f'<title>{r["month"]} 超时 {r["broken"]}</title></rect>')
        parts.append(f'<text class="point" x="{mid:.1f}" y="{top + ph - kh - bh - 6:.1f}" text-anchor="middle">'
                     f'{r["kept"]}/{r["kept"] + r["broken"]}</text>')
        parts.append(f'<text x="{mid:.1f}" y="{h - bottom + 22}" text-anchor="middle">{escape(r["month"])}</text>')
    parts.append("</svg>")
    return "".join(parts) + ('<div class="legend"><span><i style="background:#2e7d32"></i>达成</span>'
                             '<span><i style="background:#c62828"></i>超时</span><span>柱上数字：达成/到期</span></div>')
