"""The console's pages (framework in views.py)."""
from __future__ import annotations

import functools
from collections.abc import Callable

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import or_, select

from bot.console import bp, capability_views as C, labels, labels as L, queries as Q
from bot.console.auth import audit, event_actor
from bot.console.owner_import import run_import
from bot.console.views import names, page
from ground import clock
from handlers import privacy, scope
from handlers.tickets.policy import roster as load
from store.models import AuditLog, Booking, Building, Group, GroupMember, Home, Owner, SpendEntry, Staff, Ticket

TICKET_STATES = ("open", "waiting_home", "accepted", "on_the_way", "on_site", "completed", "reopened", "closed")

def _state_labels() -> dict[str, str]:
    return dict(labels.labels()["ticket_states"])


STATE_LABELS = _state_labels()


# --- Today ---------------------------------------------------------------------------------------

@bp.get("/today")
@page("staff")
def today():
    now = clock.now()
    by_class = None
    tickets = list(g.db.scalars(Q.ticket_query({"state": "open"}, Q.viewer())))
    clocks = Q.clock_views(g.db, [t.id for t in tickets], now)
    by_class = {p: [] for p in Q.PRIORITIES}
    order = {"red": 0, "amber": 1, "green": 2, "grey": 3}
    for t in Q.due_first(tickets, clocks):
        status = Q.worst([c.color for c in clocks[t.id]])
        by_class.setdefault(t.priority, []).append((privacy.ticket_view(Q.viewer(), t), clocks[t.id], status))
    for rows in by_class.values():
        rows.sort(key=lambda r: order[r[2]])  # stable: due-first inside each colour
    return render_template("today.html", by_class=by_class, labels=Q.PRIORITY_LABELS, state_labels=STATE_LABELS,
                           misses=C.unanswered(g.db, 10), pending=C.pending_bookings(g.db),
                           applications=C.pending_applications(g.db), moderation=C.moderation_waiting(g.db),
                           mine=C.my_work(g.db, g.principal.staff_id), consultations=C.waiting_consultations(g.db))


# --- Tickets ---------------------------------------------------------------------------------------

def _ticket_filters() -> dict:
    f = {k: (request.args.get(k) or "").strip()[:64]
         for k in ("state", "priority", "category", "building", "assignee", "q", "late")}
    if not request.args:
        f["state"] = "open"
    return f


def ticket_rows(f: dict, now, limit: int = 300) -> tuple[list, dict]:
    """The tickets matching the list's filters and the viewer's scope, soonest deadline first, with their clocks."""
    rows = list(g.db.scalars(Q.ticket_query(f, Q.viewer()).limit(limit)))
    if f.get("late"):
        late = Q.late_ticket_ids(g.db, now)
        rows = [t for t in rows if t.id in late]
    clocks = Q.clock_views(g.db, [t.id for t in rows], now)
    return Q.due_first(rows, clocks), clocks


@bp.get("/tickets")
@page("staff")
def tickets():
    f = _ticket_filters()
    now = clock.now()
    rows, clocks = ticket_rows(f, now)
    staff = list(g.db.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.team, Staff.name)))
    buildings = [b.code for b in g.db.scalars(select(Building).order_by(Building.code))]
    categories = {k: v for k, v in L.labels()["categories"].items() if k != "environment"}
    v = Q.viewer()
    return render_template("tickets.html", rows=[(privacy.ticket_view(v, t), clocks[t.id], Q.worst([c.color for c in clocks[t.id]]))
                                                 for t in rows],
                           f=f, states=TICKET_STATES, state_labels=STATE_LABELS, labels=Q.PRIORITY_LABELS, staff=staff,
                           categories=categories, buildings=buildings, export_args=request.args.to_dict())


def _no_ticket(ticket_id: int, what: str = ""):
    """The 404 page for a ticket that does not exist or is outside one's scope."""
    return render_template("message.html", title="工单不存在", text=f"没有工单 T{ticket_id}{what}"), 404


def _get_ticket(ticket_id: int):
    """The ticket, or None when it does not exist or lies outside the viewer's scope
    (outside one's scope reads as missing, for the page and every action on it).
    Those its work card went to may open it too: the card links here."""
    t = g.db.get(Ticket, ticket_id)
    return t if t is not None and scope.can_act_on_ticket(Q.viewer(), t) else None


def _on_ticket(view: Callable[[Ticket], object]) -> Callable:
    """A view of one ticket (`ticket_id` in the URL) that gets the Ticket itself; one that is
    missing or outside the viewer's scope is the 404 page."""
    @functools.wraps(view)
    def wrapper(ticket_id: int):
        t = _get_ticket(ticket_id)
        return _no_ticket(ticket_id) if t is None else view(t)
    return wrapper


def _to_ticket(t: Ticket, message: str, category: str):
    """Back to the ticket's page, saying how the action went."""
    flash(message, category)
    return redirect(url_for("console.ticket", ticket_id=t.id))


@bp.get("/tickets/<int:ticket_id>")
@page("staff")
@_on_ticket
def ticket(t: Ticket):
    now = clock.now()
    clocks = Q.clock_views(g.db, [t.id], now, active_only=False)[t.id]
    staff = list(g.db.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.team, Staff.name)))
    who = names()
    v = Q.viewer()
    history = [(e.at, L.event_sentence(e.action, e.actor, e.detail, who, now), e.action.startswith("clock_"))
               for e in privacy.event_views(v, Q.ticket_events(g.db, t.id))]
    me = g.principal
    mine = bool(me.staff_id) and _my_userid() == t.assignee
    can = {
        "accept": t.state == "open" and t.assignee is None and bool(me.staff_id),
        "work": t.state in ("accepted", "on_the_way", "on_site", "reopened") and bool(me.staff_id)
        and (mine or me.at_least("supervisor")),
        "reassign": me.at_least("supervisor") and t.state not in ("closed", "completed"),
        "close": me.at_least("supervisor") and t.state != "closed",
    }
    return render_template("ticket.html", t=privacy.ticket_view(v, t), clocks=clocks, history=history, staff=staff,
                           can=can, labels=Q.PRIORITY_LABELS, state_labels=STATE_LABELS,
                           may_reveal=privacy.may_reveal(v, t) and not v.sees_full_phones)


def _my_userid() -> str | None:
    if not g.principal.staff_id:
        return None
    s = g.db.get(Staff, g.principal.staff_id)
    return s.userid if s else None


@bp.post("/tickets/<int:ticket_id>/act/<action>")
@page("staff")
def ticket_act(ticket_id: int, action: str):
    """接单 / 进度 / 完成 from the ticket page, as the staff member the login is."""
    t = _get_ticket(ticket_id)
    if t is None or action not in Q.STAFF_ACTIONS:
        return _no_ticket(ticket_id, "或这个操作")
    userid = _my_userid()
    if userid is None:
        return _to_ticket(t, "您的控制台账号没有关联员工，不能以员工身份处理工单；请用「转派」交给员工。", "error")
    note = (request.form.get("note") or "").strip()[:500]
    try:
        text = Q.ticket_action(g.db, t, action, userid, note, clock.now())
    except Q.ActionError as exc:
        return _to_ticket(t, str(exc), "error")
    audit(g.db, g.principal, f"ticket.{action}", f"ticket:{t.id}", {"note": note} if note else None)
    return _to_ticket(t, text, "ok")


@bp.post("/tickets/<int:ticket_id>/close")
@page("supervisor")
@_on_ticket
def ticket_close(t: Ticket):
    reason = (request.form.get("reason") or "").strip()[:200]
    try:
        text = Q.close_ticket(g.db, t, event_actor(g.db, g.principal), reason, clock.now())
    except Q.ActionError as exc:
        return _to_ticket(t, str(exc), "error")
    audit(g.db, g.principal, "ticket.close", f"ticket:{t.id}", {"reason": reason})
    return _to_ticket(t, text, "ok")


@bp.post("/tickets/<int:ticket_id>/reassign")
@page("supervisor")
@_on_ticket
def ticket_reassign(t: Ticket):
    to = (request.form.get("assignee") or "").strip()
    staff = g.db.scalar(select(Staff).where(Staff.userid == to, Staff.active.is_(True)))
    if staff is None:
        return _to_ticket(t, "请选择一位在岗员工", "error")
    reason = (request.form.get("reason") or "").strip()[:200] or None
    previous = t.assignee
    try:
        Q.reassign_ticket(g.db, t, to, by=event_actor(g.db, g.principal), reason=reason, now=clock.now())
    except Q.ReassignError:
        return _to_ticket(t, f"T{t.id} 已{STATE_LABELS.get(t.state, t.state)}，不能转派", "error")
    audit(g.db, g.principal, "ticket.reassign", f"ticket:{t.id}", {"from": previous, "to": to, "reason": reason})
    return _to_ticket(t, f"T{t.id} 已转派给 {staff.name}", "ok")


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
    return render_template("owner.html", o=o, groups=groups, rec=owner_record(o, clock.now()))


def owner_record(o: Owner, now) -> dict:
    """What the manager needs beside the owner's card: their tickets, bookings,
    spend (12 months, and the entries) and where they stand on the tier ladder
    (None when the tier rules cannot say)."""
    from sqlalchemy import func

    rec: dict = {"standing": None}
    cond = [Ticket.owner_id == o.id] + ([Ticket.sender == o.openid] if o.openid else [])
    rec["tickets"] = list(g.db.scalars(select(Ticket).where(or_(*cond)).order_by(Ticket.id.desc()).limit(50)))
    rec["bookings"] = list(g.db.scalars(select(Booking).where(Booking.owner_id == o.id)
                                        .order_by(Booking.start_at.desc()).limit(50)))
    entries = list(g.db.scalars(select(SpendEntry).where(SpendEntry.owner_id == o.id)
                                .order_by(SpendEntry.spent_on.desc(), SpendEntry.id.desc()).limit(20)))
    total = int(g.db.scalar(select(func.coalesce(func.sum(SpendEntry.amount_fen), 0))
                            .where(SpendEntry.owner_id == o.id)) or 0)
    rec["spend"] = {"entries": entries, "total_fen": total}
    try:
        from handlers.membership import rules as R, service

        today = service.local_day(now)
        rules = R.load_rules()
        e = service.eligibility(g.db, o, today)
        window = service.window_spend(g.db, o, today, rules)
        tier = rules.tiers.get(o.tier)
        rec["standing"] = {
            "window_fen": window, "keep_fen": tier.keep_spend_fen if tier else 0,
            "keeps": R.keeps_tier(rules, o.tier, o.tier_since, window, today),
            "target": e.target, "missing_fen": e.spend_missing_fen, "eligible": e.eligible,
            "met": "、".join({"spend": "消费", "tenure": "入住年限"}.get(m, "其他") for m in e.met),
            "tenure_due": e.tenure_due,
        }
    except Exception:  # the tier rules are the membership capability's; the page still shows the rest
        import logging

        logging.getLogger(__name__).exception("owner record: tier standing unavailable")
    return rec


@bp.route("/owners/import", methods=["GET", "POST"])
@page("manager")
def owners_import():
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
    return render_template("roster.html", r=load())


# --- Audit log (manager): who opened which owner record, who changed what ------------------------------

@bp.get("/audit")
@page("manager")
def audit_log():
    action = (request.args.get("action") or "").strip()[:64]
    stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(300)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    actions = sorted(a for a in g.db.scalars(select(AuditLog.action).distinct()))
    who = names()
    groups = {gr.chat_id: gr.name for gr in g.db.scalars(select(Group))}
    rows = [{"at": a.created_at, "actor": who(a.actor), "action": L.audit_action(a.action),
             "target": L.audit_target(a.target, who, groups), "detail": L.audit_detail(a.detail, who)}
            for a in g.db.scalars(stmt)]
    return render_template("audit.html", rows=rows, action=action,
                           actions=[(a, L.audit_action(a)) for a in actions])
