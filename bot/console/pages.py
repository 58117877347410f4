"""The console's pages (framework in views.py)."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from bot import clock
from bot.console import bp, queries as Q
from bot.console.auth import audit, event_actor
from bot.console.views import page
from handlers import privacy, scope
from store.models import Group, GroupMember, Home, Owner, Staff

TICKET_STATES = ("open", "waiting_home", "accepted", "on_the_way", "on_site", "completed", "reopened", "closed")
STATE_LABELS = {"waiting_home": "待绑定", "open": "待接单", "accepted": "已接单", "on_the_way": "在路上",
                "on_site": "已到场", "completed": "已完成", "reopened": "重新处理", "closed": "已关闭"}


def _not_installed(title: str, capability: str):
    return render_template("not_installed.html", title=title, capability=capability)


# --- Today ---------------------------------------------------------------------------------------

@bp.get("/today")
@page("staff")
def today():
    from bot.console import capability_views as C

    now = clock.now()
    Ticket = Q.model("tickets", "Ticket")
    by_class = None
    if Ticket is not None:
        tickets = list(g.db.scalars(Q.ticket_query({"state": "open"}, Q.viewer())))
        clocks = Q.clock_views(g.db, [t.id for t in tickets], now)
        by_class = {p: [] for p in Q.PRIORITIES}
        order = {"red": 0, "amber": 1, "green": 2, "grey": 3}
        for t in tickets:
            status = Q.worst([c.color for c in clocks[t.id]])
            by_class.setdefault(t.priority, []).append((privacy.ticket_view(Q.viewer(), t), clocks[t.id], status))
        for rows in by_class.values():
            rows.sort(key=lambda r: (order[r[2]], r[0].id))
    return render_template("today.html", by_class=by_class, labels=Q.PRIORITY_LABELS, state_labels=STATE_LABELS,
                           misses=C.unanswered(g.db, 10), pending=C.pending_bookings(g.db),
                           applications=C.pending_applications(g.db), moderation=C.moderation_waiting(g.db),
                           mine=C.my_work(g.db, g.principal.staff_id))


# --- Tickets ---------------------------------------------------------------------------------------

@bp.get("/tickets")
@page("staff")
def tickets():
    if Q.model("tickets", "Ticket") is None:
        return _not_installed("工单", "tickets")
    f = {k: (request.args.get(k) or "").strip() for k in ("state", "priority", "category", "building", "assignee", "q", "late")}
    if not request.args:
        f["state"] = "open"
    now = clock.now()
    rows = list(g.db.scalars(Q.ticket_query(f, Q.viewer()).limit(300)))
    if f["late"]:
        late = Q.late_ticket_ids(g.db, now)
        rows = [t for t in rows if t.id in late]
    clocks = Q.clock_views(g.db, [t.id for t in rows], now)
    staff = list(g.db.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.team, Staff.name)))
    return render_template("tickets.html", rows=[(privacy.ticket_view(Q.viewer(), t), clocks[t.id],
                                                  Q.worst([c.color for c in clocks[t.id]])) for t in rows],
                           f=f, states=TICKET_STATES, state_labels=STATE_LABELS, labels=Q.PRIORITY_LABELS, staff=staff)


@bp.get("/tickets/<int:ticket_id>")
@page("staff")
def ticket(ticket_id: int):
    Ticket = Q.model("tickets", "Ticket")
    if Ticket is None:
        return _not_installed("工单", "tickets")
    t = g.db.get(Ticket, ticket_id)
    if t is None or not scope.can_see_ticket(Q.viewer(), t):  # outside one's scope reads as missing
        return render_template("message.html", title="工单不存在", text=f"没有工单 T{ticket_id}"), 404
    now = clock.now()
    clocks = Q.clock_views(g.db, [t.id], now, active_only=False)[t.id]
    staff = list(g.db.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.team, Staff.name)))
    names = {s.userid: s.name for s in staff}
    v = Q.viewer()
    return render_template("ticket.html", t=privacy.ticket_view(v, t), clocks=clocks,
                           events=privacy.event_views(v, Q.ticket_events(g.db, t.id)), staff=staff,
                           names=names, labels=Q.PRIORITY_LABELS, state_labels=STATE_LABELS,
                           may_reveal=privacy.may_reveal(v, t) and not v.sees_full_phones)


@bp.post("/tickets/<int:ticket_id>/reassign")
@page("supervisor")
def ticket_reassign(ticket_id: int):
    Ticket = Q.model("tickets", "Ticket")
    t = g.db.get(Ticket, ticket_id) if Ticket else None
    if t is None or not scope.can_see_ticket(Q.viewer(), t):
        return render_template("message.html", title="工单不存在", text=f"没有工单 T{ticket_id}"), 404
    to = (request.form.get("assignee") or "").strip()
    staff = g.db.scalar(select(Staff).where(Staff.userid == to, Staff.active.is_(True)))
    if staff is None:
        flash("请选择一位在岗员工", "error")
        return redirect(url_for("console.ticket", ticket_id=ticket_id))
    reason = (request.form.get("reason") or "").strip()[:200] or None
    previous = t.assignee
    try:
        Q.reassign_ticket(g.db, t, to, by=event_actor(g.db, g.principal), reason=reason, now=clock.now())
    except Q.ReassignError:
        flash(f"T{t.id} 已{STATE_LABELS.get(t.state, t.state)}，不能转派", "error")
        return redirect(url_for("console.ticket", ticket_id=ticket_id))
    audit(g.db, g.principal, "ticket.reassign", f"ticket:{t.id}", {"from": previous, "to": to, "reason": reason})
    flash(f"T{t.id} 已转派给 {staff.name}", "ok")
    return redirect(url_for("console.ticket", ticket_id=ticket_id))


# --- Owners (manager; every look-up logged) ----------------------------------------------------------------

@bp.get("/owners")
@page("manager")
def owners():
    text = (request.args.get("q") or "").strip()[:64]
    rows = []
    if text:  # no list of everyone by default: records are opened on purpose, and logged
        stmt = (select(Owner).outerjoin(Home, Owner.home_id == Home.id)
                .where(scope.owner_search_clause(text)).order_by(Home.room).limit(100))  # "%"/"_" literal
        clause = scope.owner_clause(Q.viewer())
        rows = list(g.db.scalars(stmt if clause is None else stmt.where(clause)))
        audit(g.db, g.principal, "owner.search", text, {"results": [o.id for o in rows]})
    return render_template("owners.html", q=text, rows=rows)


@bp.get("/owners/<int:owner_id>")
@page("manager")
def owner(owner_id: int):
    o = g.db.get(Owner, owner_id)
    if o is None or not scope.can_see_owner(g.db, Q.viewer(), o):
        return render_template("message.html", title="业主不存在", text="没有这位业主"), 404
    audit(g.db, g.principal, "owner.view", f"owner:{o.id}")
    groups = list(g.db.scalars(select(GroupMember).where(GroupMember.owner_id == o.id)))
    return render_template("owner.html", o=o, groups=groups)


@bp.route("/owners/import", methods=["GET", "POST"])
@page("manager")
def owners_import():
    from bot.console.owner_import import run_import

    report = None
    if request.method == "POST":
        up = request.files.get("file")
        if up is None or not up.filename:
            flash("请选择要导入的 CSV 或 Excel 文件", "error")
        else:
            dry = request.form.get("mode") != "import"
            report = run_import(g.db, up.filename, up.read(), dry_run=dry)
            audit(g.db, g.principal, "owner.import", up.filename,
                  {"dry_run": dry, "rows": report.rows, "errors": len(report.errors), "imported": report.imported})
    return render_template("import.html", report=report)


# --- Duty roster (read-only: the tickets capability's YAML is the source) -------------------------------

@bp.get("/roster")
@page("staff")
def roster():
    try:
        from handlers.tickets.policy import roster as load
    except ImportError:
        return _not_installed("值班", "tickets")
    return render_template("roster.html", r=load())


# --- Audit log (manager): who opened which owner record, who changed what ------------------------------

@bp.get("/audit")
@page("manager")
def audit_log():
    from store.models import AuditLog

    action = (request.args.get("action") or "").strip()[:64]
    stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(300)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    actions = sorted(a for a in g.db.scalars(select(AuditLog.action).distinct()))
    return render_template("audit.html", rows=list(g.db.scalars(stmt)), action=action, actions=actions)

from bot.console import reveal  # noqa: E402,F401  (the phone reveal, handlers/privacy.py)
