"""Routes over the capabilities: tickets, bookings and applications, duty
roster, announcements, surveys, groups and strikes, FAQ."""
from __future__ import annotations

from flask import g, jsonify
from sqlalchemy import select

from bot import campaigns
from bot.api.common import (ApiError, api_route, body_json, iso, page_args, principal, query_args,
                            req_date, req_datetime, req_int, req_str, row_dict, where_given)
from bot.console import kb_queries, queries as Q
from bot.console.auth import audit, event_actor
from bot.console.group_queries import strikes
from bot.console.satisfaction import results
from ground import clock
from handlers import privacy, scope
from handlers.groups import ladder
from handlers.membership.rules import tier_names
from handlers.tickets.policy import roster as load
from store.models import (Booking, Campaign, FaqMiss, MemberApplication, ModerationCase, Owner, Staff,
                          Ticket)

# --- tickets ---------------------------------------------------------------------------------

TICKET_FILTERS = {"state": "string: open (every unfinished state) or one state",
                  "priority": "string: urgent/important/general", "category": "string: e.g. plumbing",
                  "kind": "string: complaint/repair", "building": "string: e.g. 1栋", "room": "string: e.g. 1-1201",
                  "assignee": "string: staff userid", "team": "string: e.g. repair", "q": "string: text in the content",
                  "late": "string: 1 = only tickets with a broken clock", "limit": "integer: page size (1-500)",
                  "offset": "integer: rows to skip"}
TICKET_STATES = ("open", "waiting_home", "accepted", "on_the_way", "on_site", "completed", "reopened", "closed")


@api_route("/tickets", ["GET"], "staff", "Tickets, filtered, newest first, with their running clocks",
           query=TICKET_FILTERS)
def tickets_list():
    q = query_args()
    f = {"state": req_str(q, "state", required=False, choices=TICKET_STATES),
         "priority": req_str(q, "priority", required=False, choices=Q.PRIORITIES),
         "kind": req_str(q, "kind", required=False, choices=("complaint", "repair"))}
    for k in ("category", "building", "room", "assignee", "team", "q"):
        f[k] = req_str(q, k, required=False, max_len=64)
    late = req_str(q, "late", required=False, choices=("0", "1"))
    limit, offset = page_args()
    now = clock.now()
    stmt = Q.ticket_query(f, Q.viewer())
    if late == "1":
        ids = Q.late_ticket_ids(g.db, now)
        stmt = stmt.where(Ticket.id.in_(ids or [-1]))
    rows = list(g.db.scalars(stmt.limit(limit).offset(offset)))
    clocks = Q.clock_views(g.db, [t.id for t in rows], now)
    return jsonify({"tickets": [Q.ticket_dict(t, clocks[t.id], Q.viewer()) for t in rows], "limit": limit,
                    "offset": offset})


def _ticket_or_404(ticket_id: int):
    t = g.db.get(Ticket, ticket_id)
    if t is None or not scope.can_see_ticket(Q.viewer(), t):  # outside one's scope reads as missing
        raise ApiError(404, f"no ticket T{ticket_id}", "ticket_id")
    return t


@api_route("/tickets/<int:ticket_id>", ["GET"], "staff", "One ticket: its fields, every clock and its full story (events)")
def ticket_detail(ticket_id: int):
    t = _ticket_or_404(ticket_id)
    d = Q.ticket_dict(t, Q.clock_views(g.db, [t.id], clock.now(), active_only=False)[t.id], Q.viewer())
    d["events"] = [{"at": iso(e.at), "actor": e.actor, "action": e.action,
                    "detail": privacy.for_viewer(Q.viewer(), e.detail)} for e in Q.ticket_events(g.db, t.id)]
    return jsonify(d)


@api_route("/tickets/<int:ticket_id>/contact", ["POST"], "supervisor",
           "The ticket's contact number in full (staff views show it masked); the department's "
           "supervisor or a manager; every reveal is written to the audit log")
def ticket_contact(ticket_id: int):
    t = _ticket_or_404(ticket_id)
    if not privacy.may_reveal(Q.viewer(), t):
        audit(g.db, principal(), "phone.reveal_refused", f"ticket:{t.id}")
        raise ApiError(403, "only the ticket's holder, its department's supervisor or a manager may see the number")
    audit(g.db, principal(), "phone.reveal", f"ticket:{t.id}", {"owner_id": t.owner_id})
    return jsonify({"id": t.id, "contact_name": t.contact_name, "contact_phone": t.contact_phone})


@api_route("/tickets/<int:ticket_id>/reassign", ["POST"], "supervisor",
           "Reassign a ticket to another staff member (recorded as a ticket event; the new holder gets a card)",
           body={"assignee": "string: staff userid", "reason": "string: why (optional)"}, required=["assignee"])
def ticket_reassign(ticket_id: int):
    data = body_json()
    to = req_str(data, "assignee", max_len=64)
    reason = req_str(data, "reason", required=False, max_len=200)
    t = _ticket_or_404(ticket_id)
    if g.db.scalar(select(Staff).where(Staff.userid == to, Staff.active.is_(True))) is None:
        raise ApiError(400, f"assignee {to!r} is not an active staff member", "assignee")
    prev = t.assignee
    try:
        Q.reassign_ticket(g.db, t, to, by=event_actor(g.db, principal()), reason=reason, now=clock.now())
    except Q.ReassignError as exc:
        raise ApiError(409, str(exc), "ticket_id") from None
    audit(g.db, principal(), "ticket.reassign", f"ticket:{t.id}", {"from": prev, "to": to, "reason": reason})
    return jsonify(Q.ticket_dict(t, Q.clock_views(g.db, [t.id], clock.now())[t.id], Q.viewer()))


# --- bookings and applications -----------------------------------------------------------------

BOOKING_STATES = ("requested", "approved", "contacted", "done", "rated", "rejected", "cancelled")


def _owner_label(o: Owner | None) -> dict:
    # Staff handle bookings, so they see who and where, but not phone or birthday (owner records).
    return {"owner_id": o.id, "owner_name": o.name, "room": o.room} if o else {"owner_id": None}


@api_route("/bookings", ["GET"], "staff", "Member-service bookings",
           query={"state": "string: " + "/".join(BOOKING_STATES), "service": "string: service id",
                  "day": "string: date 2026-09-15", "limit": "integer: page size (1-500)",
                  "offset": "integer: rows to skip"})
def bookings_list():
    q = query_args()
    state = req_str(q, "state", required=False, choices=BOOKING_STATES)
    service = req_str(q, "service", required=False, max_len=32)
    day = req_date(q, "day", required=False)
    limit, offset = page_args()

    # A building's staff see its owners' bookings (handlers/scope.py), managers all.
    stmt = scope.scoped_by_owner(select(Booking).order_by(Booking.start_at.desc(), Booking.id.desc()),
                                 Booking.owner_id, Q.viewer())
    stmt = where_given(stmt, (Booking.state, state), (Booking.service, service), (Booking.day, day))
    out = []
    for b in g.db.scalars(stmt.limit(limit).offset(offset)):
        d = row_dict(b, ["id", "service", "day", "start_at", "end_at", "when_text", "location", "tier", "team",
                         "state", "reviewed_by", "approved_at", "contacted_at", "done_at", "rating", "created_at"])
        out.append(d | _owner_label(b.owner))
    return jsonify({"bookings": out, "limit": limit, "offset": offset})


@api_route("/applications", ["GET"], "staff", "Membership upgrade applications",
           query={"state": "string: pending/approved/rejected"})
def applications_list():
    state = req_str(query_args(), "state", required=False, choices=("pending", "approved", "rejected"))

    stmt = scope.scoped_by_owner(select(MemberApplication).order_by(MemberApplication.id.desc()), MemberApplication.owner_id, Q.viewer())
    if state:
        stmt = stmt.where(MemberApplication.state == state)
    out = [row_dict(a, ["id", "from_tier", "target_tier", "basis", "state", "reviewed_by", "reviewed_at",
                        "created_at"]) | _owner_label(a.owner) for a in g.db.scalars(stmt.limit(200))]
    return jsonify({"applications": out})


def _decision_target(model_name: str, obj_id: int, field: str):
    row = g.db.get({"Booking": Booking, "MemberApplication": MemberApplication}[model_name], obj_id)

    M = {"Booking": Booking, "MemberApplication": MemberApplication}[model_name]
    clause = scope.of_visible_owners(M.owner_id, Q.viewer())
    if row is None or (clause is not None and g.db.scalar(select(M.id).where(M.id == obj_id, clause)) is None):
        raise ApiError(404, f"no {field.split('_')[0]} {obj_id}", field)  # outside one's scope reads as missing
    return row


@api_route("/bookings/<int:booking_id>/action", ["POST"], "staff",
           "Move a booking on: approve / reject (review, O2), contacted (owner called, O2), done (O3 starts)",
           body={"action": "string: approve/reject/contacted/done"}, required=["action"])
def booking_act(booking_id: int):
    data = body_json()
    action = req_str(data, "action", choices=("approve", "reject", "contacted", "done"))
    b = _decision_target("Booking", booking_id, "booking_id")
    try:
        text = Q.booking_action(g.db, b.id, action, event_actor(g.db, principal()), clock.now())
    except Q.DecisionError as exc:
        raise ApiError(409, str(exc), "action") from None
    return jsonify({"id": b.id, "state": b.state, "message": text})


@api_route("/applications/<int:application_id>/review", ["POST"], "supervisor",
           "Approve or reject a membership upgrade application (the owner is told; the tier changes on approval)",
           body={"approve": "boolean", "note": "string: reason shown to the owner (optional)"}, required=["approve"])
def application_review(application_id: int):
    data = body_json()
    approve = data.get("approve")
    if not isinstance(approve, bool):
        raise ApiError(400, "approve must be true or false", "approve")
    note = req_str(data, "note", required=False, max_len=200)
    app = _decision_target("MemberApplication", application_id, "application_id")
    try:
        text = Q.review_application(g.db, app.id, approve, event_actor(g.db, principal()), clock.now(), note)
    except Q.DecisionError as exc:
        raise ApiError(409, str(exc), "application_id") from None
    return jsonify({"id": app.id, "state": app.state, "message": text})


# --- duty roster -------------------------------------------------------------------------------------

@api_route("/roster", ["GET"], "staff", "The duty roster: who is asked first per team and building, heads, escalation")
def roster():
    r = load()
    names = {s.userid: s.name for s in g.db.scalars(select(Staff))}
    teams = {}
    for team, spec in r.teams.items():
        teams[team] = {"label": spec.get("label", team), "head": spec.get("head"),
                       "on_duty": {b: [{"userid": u, "name": names.get(u)} for u in people]
                                   for b, people in (spec.get("on_duty") or {}).items()}}
    return jsonify({"categories": r.categories, "teams": teams, "escalation": r.escalation, "callback": r.callback})


# --- announcements -----------------------------------------------------------------------------------

TARGET_HELP = ('object: {"everyone": true} | {"buildings": ["1栋"]} | {"tiers": ["金卡"]} | '
               '{"groups": [chat_id] or "all"} | {"owners": [id]} | {"staff": [userid]}')


def announcement_dict(camp, progress: dict | None = None) -> dict:
    d = row_dict(camp, ["id", "kind", "title", "text", "target", "send_at", "emergency", "state", "created_by",
                        "created_at", "started_at", "finished_at", "cancelled_at", "cancelled_by"])
    if progress is not None:
        d["deliveries"] = progress
        d["total"] = sum(progress.values())
        d["sent"] = progress.get("sent", 0)
    return d


@api_route("/announcements", ["GET"], "staff", "Announcements with delivery progress, newest first",
           query={"state": "string: scheduled/planned/sending/done/cancelled", "limit": "integer: page size (1-500)",
                  "offset": "integer: rows to skip"})
def announcements_list():
    state = req_str(query_args(), "state", required=False,
                    choices=("scheduled", "planned", "sending", "done", "cancelled"))
    limit, offset = page_args()
    stmt = select(Campaign).where(Campaign.kind == "announcement").order_by(Campaign.id.desc())
    if state:
        stmt = stmt.where(Campaign.state == state)
    rows = list(g.db.scalars(stmt.limit(limit).offset(offset)))
    prog = Q.delivery_progress(g.db, [c.id for c in rows])
    return jsonify({"announcements": [announcement_dict(c, prog[c.id]) for c in rows]})


def validate_target(data: dict) -> dict:
    target = data.get("target")
    if not isinstance(target, dict) or not target:
        raise ApiError(400, "target must be an object such as {\"everyone\": true}", "target")
    allowed = ("everyone", "groups", "buildings", "tiers", "owners", "staff")
    for k, v in target.items():
        if k not in allowed:
            raise ApiError(400, f"target.{k} is unknown; use {', '.join(allowed)}", f"target.{k}")
        if k == "everyone":
            if v is not True:
                raise ApiError(400, "target.everyone must be true", "target.everyone")
        elif k == "groups" and v == "all":
            continue  # every VIP and building group
        elif not isinstance(v, list) or not v:
            raise ApiError(400, f"target.{k} must be a non-empty list", f"target.{k}")
    tiers = tier_names()
    for t in target.get("tiers", []):
        if t not in tiers:
            raise ApiError(400, f"target.tiers: {t!r} is not {'/'.join(tiers)}", "target.tiers")
    return target


@api_route("/announcements", ["POST"], "supervisor",
           "Create an announcement: now, or scheduled with send_at (Shanghai time when no offset is given)",
           body={"text": "string: the announcement", "target": TARGET_HELP,
                 "send_at": "string: ISO date-time; omitted = now", "emergency": "boolean: send at once through quiet hours"},
           required=["text", "target"])
def announcements_create():
    data = body_json()
    text = req_str(data, "text", max_len=2000)
    target = validate_target(data)
    send_at = req_datetime(data, "send_at", required=False)
    emergency = data.get("emergency")
    if emergency is not None and not isinstance(emergency, bool):
        raise ApiError(400, "emergency must be true or false", "emergency")
    if send_at is not None and send_at < clock.now():
        raise ApiError(400, "send_at is in the past", "send_at")
    try:
        camp = campaigns.create_announcement(g.db, text, target, at=send_at, emergency=emergency,
                                       created_by=principal().actor)
    except campaigns.CampaignError as exc:
        raise ApiError(400, str(exc), "target" if "target" in str(exc) else "text") from None
    # create_announcement writes the audit row itself (actor = created_by).
    return jsonify(announcement_dict(camp, {})), 201


def _announcement_or_404(campaign_id: int) -> Campaign:
    """The announcement; 404 when there is no such announcement."""
    camp = g.db.get(Campaign, campaign_id)
    if camp is None or camp.kind != "announcement":
        raise ApiError(404, f"no announcement {campaign_id}", "announcement_id")
    return camp


def _announcement_json(camp, **extra):
    """One announcement with its delivery progress as it stands now, plus `extra` fields."""
    return jsonify(announcement_dict(camp, Q.delivery_progress(g.db, [camp.id])[camp.id]) | extra)


@api_route("/announcements/preview", ["POST"], "supervisor",
           "Who an announcement would reach, before sending: the audience in words and its count",
           body={"target": TARGET_HELP}, required=["target"])
def announcements_preview():
    target = validate_target(body_json())
    try:
        return jsonify(campaigns.audience(g.db, target))
    except campaigns.CampaignError as exc:
        raise ApiError(400, str(exc), "target") from None


@api_route("/announcements/<int:announcement_id>", ["GET"], "staff",
           "One announcement with delivery progress and why deliveries failed (in words)")
def announcement_detail(announcement_id: int):
    camp = _announcement_or_404(announcement_id)
    failures = dict(campaigns.failure_reasons(g.db, [camp.id])[camp.id])
    return _announcement_json(camp, failures=failures)


@api_route("/announcements/<int:announcement_id>/retry", ["POST"], "supervisor",
           "Send an announcement's failed deliveries again")
def announcement_retry(announcement_id: int):
    camp = _announcement_or_404(announcement_id)
    try:
        n = campaigns.retry_failed(g.db, camp.id, retried_by=principal().actor)
    except campaigns.CampaignError as exc:
        raise ApiError(409, str(exc), "announcement_id") from None
    return _announcement_json(camp, retried=n)


@api_route("/announcements/<int:announcement_id>/cancel", ["POST"], "supervisor",
           "Cancel whatever of an announcement has not gone out yet")
def announcement_cancel(announcement_id: int):
    camp = _announcement_or_404(announcement_id)
    res = campaigns.cancel_announcement(g.db, camp.id, cancelled_by=principal().actor)
    if not res.get("cancelled"):
        raise ApiError(409, f"announcement {camp.id} is already {res.get('state')}", "announcement_id")
    return _announcement_json(camp, result=res)


# --- surveys ------------------------------------------------------------------------------------------

@api_route("/surveys/results", ["GET"], "supervisor",
           "Satisfaction results: average score and count per period, grouped by building, tier or category",
           query={"source": "string: survey (quarterly survey answers) or tickets (post-ticket ratings)",
                  "by": "string: building/tier/category/none", "survey": "string: survey name (default satisfaction)"})
def surveys_results():
    q = query_args()
    source = req_str(q, "source", required=False, choices=("survey", "tickets")) or "survey"
    by = req_str(q, "by", required=False, choices=("building", "tier", "category", "none")) or "none"
    survey = req_str(q, "survey", required=False, max_len=32) or "satisfaction"
    if source == "survey" and by == "category":
        raise ApiError(400, "survey answers have no category; use source=tickets", "by")
    series = results(g.db, source, by, survey)
    return jsonify({"source": source, "by": by, "series": series})


# --- groups and strikes ------------------------------------------------------------------------------

@api_route("/strikes", ["GET"], "supervisor", "Moderation cases (strikes) in the customer groups, newest first",
           query={"group": "string: group chat_id", "member": "string: member external_userid",
                  "status": "string: open/done/reversed/lifted", "limit": "integer: page size (1-500)"})
def strikes_list():
    q = query_args()
    group = req_str(q, "group", required=False, max_len=64)
    member = req_str(q, "member", required=False, max_len=64)
    status = req_str(q, "status", required=False, choices=("open", "done", "reversed", "lifted"))
    limit, _ = page_args(100)
    rows = strikes(g.db, group, member, status, limit, Q.viewer())
    return jsonify({"strikes": rows})


# --- FAQ ------------------------------------------------------------------------------------------

@api_route("/faq/entries", ["GET"], "staff", "Knowledge-base entries (as the bot currently serves them)",
           query={"q": "string: text in a question, the answer or the title, or an exact id"})
def faq_entries():
    q = req_str(query_args(), "q", required=False, max_len=64)
    return jsonify({"entries": [{"id": e.id, "title": e.title, "questions": list(e.questions), "answer": e.answer,
                                 "tags": list(e.tags), "source": e.source, "file": e.file}
                                for e in kb_queries.entries(q)]})


@api_route("/faq/misses", ["GET"], "staff", "Questions the bot could not answer outright, newest first",
           query={"all": "string: 1 = include resolved ones", "limit": "integer: page size (1-500)"})
def faq_misses():
    show_all = req_str(query_args(), "all", required=False, choices=("0", "1")) == "1"
    limit, _ = page_args(100)
    rows = kb_queries.miss_rows(g.db, show_all, limit)
    return jsonify({"misses": [row_dict(m, ["id", "text", "chat", "kind", "best_id", "best_score", "candidates",
                                            "resolved", "created_at"]) for m in rows]})


@api_route("/faq/entries/<entry_id>/phrasings", ["POST"], "supervisor",
           "Add a phrasing to an entry (written into the entry's YAML file; the bot reloads it within seconds); "
           "with miss_id, the miss and its repeats are marked resolved",
           body={"phrase": "string: the new way of asking", "miss_id": "integer: the miss it answers (optional)"},
           required=["phrase"])
def faq_add_phrasing(entry_id: str):
    data = body_json()
    phrase = req_str(data, "phrase", max_len=200)
    miss_id = req_int(data, "miss_id", required=False, minimum=1)
    miss = g.db.get(FaqMiss, miss_id) if miss_id else None
    if miss_id and miss is None:
        raise ApiError(400, f"no miss {miss_id}", "miss_id")
    try:
        file = kb_queries.add_phrasing(entry_id, phrase)
    except kb_queries.KBEditError as exc:
        raise ApiError(404 if "no entry" in str(exc) else 400, str(exc), exc.field) from None
    resolved = kb_queries.resolve_misses(g.db, miss.text) if miss else 0
    audit(g.db, principal(), "faq.add_phrasing", f"faq:{entry_id}", {"phrase": phrase, "file": file, "miss": miss_id})
    return jsonify({"entry_id": entry_id, "phrase": phrase, "file": file, "resolved_misses": resolved}), 201


@api_route("/faq/entries", ["POST"], "supervisor", "Add a new entry (written to faq/data/console_added.yaml)",
           body={"id": "string: lower-case id", "title": "string", "questions": "array: at least two phrasings",
                 "answer": "string: at most 400 characters", "tags": "array: keywords", "miss_id": "integer: optional"},
           required=["id", "title", "questions", "answer"])
def faq_add_entry():
    data = body_json()
    qs = data.get("questions")
    if not isinstance(qs, list) or not all(isinstance(x, str) for x in qs):
        raise ApiError(400, "questions must be a list of texts", "questions")
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
        raise ApiError(400, "tags must be a list of texts", "tags")
    miss_id = req_int(data, "miss_id", required=False, minimum=1)
    try:
        file = kb_queries.add_entry(req_str(data, "id", max_len=64), req_str(data, "title", max_len=64), qs,
                             req_str(data, "answer", max_len=2000), tags)
    except kb_queries.KBEditError as exc:
        raise ApiError(400, str(exc), "id" if exc.field == "entry_id" else exc.field) from None
    miss = g.db.get(FaqMiss, miss_id) if miss_id else None
    resolved = kb_queries.resolve_misses(g.db, miss.text) if miss else 0
    audit(g.db, principal(), "faq.add_entry", f"faq:{data['id']}", {"file": file, "miss": miss_id})
    return jsonify({"id": data["id"], "file": file, "resolved_misses": resolved}), 201


@api_route("/strikes/<int:case_id>/decide", ["POST"], "supervisor",
           "Settle a moderation case: done (the step was applied in the group) or fp (not a violation: reversed)",
           body={"decision": "string: done/fp"}, required=["decision"])
def strike_decide(case_id: int):
    data = body_json()
    decision = req_str(data, "decision", choices=("done", "fp"))
    case = g.db.get(ModerationCase, case_id)

    if case is None or not scope.can_see_group(g.db, Q.viewer(), case.group_chat_id):  # outside one's scope: missing
        raise ApiError(404, f"no moderation case {case_id}", "case_id")

    status = ladder.decide(g.db, clock.now(), case, decision, event_actor(g.db, principal()))
    if status.startswith("already"):
        raise ApiError(409, f"case {case_id} is {status}", "decision")
    return jsonify({"id": case.id, "status": case.status, "false_positive": case.false_positive})
