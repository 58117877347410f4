"""Routes resting on the foundation: who am I, owners (confidential, logged),
owner import, staff, groups, audit log, console users."""
from __future__ import annotations

from flask import g, jsonify, request
from sqlalchemy import select

from bot.api.common import (PATHS, ApiError, api_route, body_json, bp, iso, page_args, principal, query_args,
                            req_str, row_dict)
from bot.console.auth import audit, create_user, issue_token
from bot.console.owner_import import run_import
from bot.console.queries import viewer
from handlers import scope
from handlers.membership.rules import tier_names
from store.models import AuditLog, ConsoleUser, Group, GroupMember, Home, Owner, Staff

API_VERSION = "1.0.0"


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI description; public, like any API's reference (it holds no data)."""
    return jsonify(openapi_document())


def openapi_document() -> dict:
    paths = dict(PATHS)
    paths["/openapi.json"] = {"get": {"summary": "This OpenAPI description", "operationId": "openapi",
                                      "security": [], "responses": {"200": {"description": "OK"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "管家 admin API", "version": API_VERSION,
                 "description": "Bearer token: GUANJIA_ADMIN_TOKEN (full admin) or a per-user token "
                                "(`guanjia users token NAME`). `x-required-role` names the least role "
                                "(staff < supervisor < manager). Owner records need a manager and every "
                                "look-up is written to the audit log."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "string"}, "field": {"type": "string", "description": "the offending field"}}}},
        },
        "paths": dict(sorted(paths.items())),
    }


@api_route("/me", ["GET"], "staff", "Who the token belongs to and its role")
def whoami():
    p = principal()
    return jsonify({"username": p.username, "name": p.name, "role": p.role, "via": p.via})


# --- owners (confidential) ----------------------------------------------------------

def owner_dict(o: Owner) -> dict:
    d = row_dict(o, ["id", "name", "phone", "tier", "tier_since", "move_in_date", "birthday",
                     "fees_paid_until", "openid", "external_userid"])
    d["room"] = o.room
    d["warranty_until"] = iso(o.home.warranty_until) if o.home else None
    return d


@api_route("/owners", ["GET"], "manager", "Search owner records (manager only; logged)",
           query={"q": "string: name, phone or room fragment", "tier": "string: " + "/".join(tier_names()),
                  "limit": "integer: page size (1-500)", "offset": "integer: rows to skip"})
def owners_list():
    q = query_args()
    tier = req_str(q, "tier", required=False, choices=tier_names())
    text = req_str(q, "q", required=False, max_len=64)
    limit, offset = page_args()
    stmt = select(Owner).outerjoin(Home, Owner.home_id == Home.id).order_by(Home.room, Owner.id)
    if tier:
        stmt = stmt.where(Owner.tier == tier)
    if text:
        stmt = stmt.where(scope.owner_search_clause(text))  # "%" and "_" match only themselves
    clause = scope.owner_clause(scope.for_principal(g.db, principal()))
    if clause is not None:
        stmt = stmt.where(clause)
    rows = list(g.db.scalars(stmt.limit(limit).offset(offset)))
    audit(g.db, principal(), "owner.search", text or "*", {"tier": tier, "results": [o.id for o in rows]})
    return jsonify({"owners": [owner_dict(o) for o in rows], "limit": limit, "offset": offset})


@api_route("/owners/<int:owner_id>", ["GET"], "manager", "One owner record (manager only; logged)")
def owner_detail(owner_id: int):
    o = g.db.get(Owner, owner_id)
    if o is None or not scope.can_see_owner(g.db, scope.for_principal(g.db, principal()), o):
        raise ApiError(404, "no such owner", "owner_id")
    audit(g.db, principal(), "owner.view", f"owner:{o.id}")
    d = owner_dict(o)
    d["groups"] = [{"group": m.group.name, "role": m.role, "state": m.state}
                   for m in g.db.scalars(select(GroupMember).where(GroupMember.owner_id == o.id))]
    return jsonify(d)


@api_route("/owners/import", ["POST"], "manager",
           "Import owners from CSV or Excel (multipart `file`); dry run unless dry_run=0, nothing "
           "is written while any row is bad",
           query={"dry_run": "string: 1 (default) checks only, 0 imports when clean"},
           body={"file": "string: the CSV/XLSX upload"}, required=["file"], body_type="multipart/form-data")
def owners_import():
    up = request.files.get("file")
    if up is None:
        raise ApiError(400, "upload the CSV or Excel file as multipart field 'file'", "file")
    dry = request.args.get("dry_run", "1")
    if dry not in ("0", "1", "true", "false"):
        raise ApiError(400, "dry_run must be 1 or 0", "dry_run")
    dry_run = dry in ("1", "true")
    report = run_import(g.db, up.filename or "", up.read(), dry_run=dry_run)
    audit(g.db, principal(), "owner.import", up.filename, {k: v for k, v in report.as_dict().items() if k != "errors"}
          | {"errors": len(report.errors)})
    body = report.as_dict()
    if not report.ok:
        body["error"] = f"{len(report.errors)} problem(s) found; nothing was imported"
        body["field"] = report.errors[0].field
        return jsonify(body), 400
    return jsonify(body)


# --- staff, groups ------------------------------------------------------------------

@api_route("/staff", ["GET"], "staff", "Staff members (for reassignment pickers)",
           query={"team": "string: customer_service/repair/security/cleaning/management"})
def staff_list():
    team = req_str(query_args(), "team", required=False, max_len=32)
    stmt = select(Staff).where(Staff.active.is_(True)).order_by(Staff.team, Staff.name)
    if team:
        stmt = stmt.where(Staff.team == team)
    return jsonify({"staff": [row_dict(s, ["id", "userid", "name", "team", "role"]) for s in g.db.scalars(stmt)]})


@api_route("/groups", ["GET"], "supervisor", "Customer groups with their staff admin and member counts",
           query={"kind": "string: vip/building/staff"})
def groups_list():
    kind = req_str(query_args(), "kind", required=False, choices=("vip", "building", "staff"))
    stmt = select(Group).order_by(Group.id)
    clause = scope.group_clause(viewer())
    if clause is not None:
        stmt = stmt.where(clause)
    if kind:
        stmt = stmt.where(Group.kind == kind)
    out = []
    for grp in g.db.scalars(stmt):
        members = list(g.db.scalars(select(GroupMember).where(GroupMember.group_id == grp.id)))
        out.append({"id": grp.id, "chat_id": grp.chat_id, "name": grp.name, "kind": grp.kind,
                    "building": grp.building.code if grp.building else None,
                    "staff_admin": grp.staff_admin.userid if grp.staff_admin else None,
                    "members": sum(1 for m in members if m.state == "active"),
                    "removed": sum(1 for m in members if m.state == "removed")})
    return jsonify({"groups": out})


# --- audit, users --------------------------------------------------------------------

@api_route("/audit", ["GET"], "manager", "The audit log, newest first",
           query={"action": "string: e.g. owner.view", "limit": "integer: page size (1-500)",
                  "offset": "integer: rows to skip"})
def audit_list():
    action = req_str(query_args(), "action", required=False, max_len=64)
    limit, offset = page_args(100)
    stmt = select(AuditLog).order_by(AuditLog.id.desc())
    if action:
        stmt = stmt.where(AuditLog.action == action)
    return jsonify({"entries": [row_dict(a) for a in g.db.scalars(stmt.limit(limit).offset(offset))]})


@api_route("/users", ["GET"], "manager", "Console users", query={"role": "string: staff/supervisor/manager"})
def users_list():
    role = req_str(query_args(), "role", required=False, choices=("staff", "supervisor", "manager"))
    stmt = select(ConsoleUser).order_by(ConsoleUser.username)
    if role:
        stmt = stmt.where(ConsoleUser.role == role)
    users = g.db.scalars(stmt)
    return jsonify({"users": [row_dict(u, ["id", "username", "name", "role", "active", "last_login_at"])
                              for u in users]})


@api_route("/users", ["POST"], "manager", "Create a console user; returns an API token once",
           body={"username": "string", "name": "string", "role": "string: staff/supervisor/manager",
                 "password": "string: at least 8 characters", "staff_userid": "string: WeCom userid (optional)"},
           required=["username", "role", "password"])
def users_create():
    data = body_json()
    username = req_str(data, "username", max_len=64)
    role = req_str(data, "role", choices=("staff", "supervisor", "manager"))
    password = req_str(data, "password", max_len=256)
    name = req_str(data, "name", required=False, max_len=64) or username
    staff_userid = req_str(data, "staff_userid", required=False, max_len=64)
    try:
        user = create_user(g.db, username, name, role, password, staff_userid)
    except ValueError as exc:
        msg = str(exc)
        field = next((f for f in ("password", "staff", "role") if msg.startswith(f)), "username")
        raise ApiError(400, msg, "staff_userid" if field == "staff" else field) from None
    token = issue_token(g.db, user, "api")
    audit(g.db, principal(), "user.create", f"user:{username}", {"role": role})
    return jsonify({"id": user.id, "username": username, "role": role, "token": token}), 201
