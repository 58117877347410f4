"""Blueprint, authentication, errors, validation and the OpenAPI registry."""
from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any, Callable

from flask import Blueprint, current_app, g, jsonify, request

from bot.console.auth import Principal, from_bearer
from bot.console.queries import iso, row_dict, where_given  # noqa: F401  (the routes take them from here)
from ground.clock import CST
from handlers.registry import DuplicateRegistration
from store.db import session_scope

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# path (OpenAPI form) -> method -> operation object
PATHS: dict[str, dict[str, dict]] = {}
_ROUTE_OWNERS: dict[tuple[str, str], str] = {}  # (rule, method) -> the view function that declared it


class ApiError(Exception):
    """An error answered as JSON; validation errors name the field."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    body: dict[str, Any] = {"error": exc.message}
    if exc.field:
        body["field"] = exc.field
    return jsonify(body), exc.status


@bp.errorhandler(404)
def _not_found(_exc):
    return jsonify({"error": "not found"}), 404


@bp.errorhandler(405)
def _not_allowed(_exc):
    return jsonify({"error": "method not allowed"}), 405


def _openapi_path(rule: str) -> str:
    # Flask "<int:ticket_id>" -> OpenAPI "{ticket_id}"
    import re

    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def api_route(rule: str, methods: list[str], role: str, summary: str, *,
              query: dict[str, str] | None = None, body: dict[str, str] | None = None,
              required: list[str] | None = None, body_type: str = "application/json") -> Callable:
    """Register a route that needs at least `role`, and describe it for OpenAPI.

    `query`/`body` map parameter names to a short description (type first,
    e.g. "string: room such as 1-1201").
    """
    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with session_scope() as s:
                g.db = s
                who = from_bearer(s, request.headers.get("Authorization"),
                                  current_app.config["GUANJIA_SETTINGS"].admin_token)
                if not current_app.config["GUANJIA_SETTINGS"].admin_token:
                    # CONTRACT.md: no GUANJIA_ADMIN_TOKEN means the API is closed.
                    raise ApiError(403, "the admin API is closed: GUANJIA_ADMIN_TOKEN is not set")
                if who is None:
                    raise ApiError(401, "a valid bearer token is required")
                if not who.at_least(role):
                    raise ApiError(403, f"this needs the {role} role; you are {who.role}")
                g.principal = who
                result = fn(*args, **kwargs)
            return result

        bp.add_url_rule(rule, fn.__name__, wrapper, methods=methods)
        op: dict[str, Any] = {"summary": summary, "operationId": fn.__name__,
                              "x-required-role": role, "security": [{"bearer": []}],
                              "responses": _RESPONSES}
        import re

        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "integer" if t == "int" else "string"}}
                  for t, n in re.findall(r"<(?:([a-z]+):)?([a-z_]+)>", rule)]
        params += [{"name": k, "in": "query", "required": False, "description": v,
                    "schema": {"type": _type_of(v)}} for k, v in (query or {}).items()]
        if params:
            op["parameters"] = params
        if body is not None:
            op["requestBody"] = {"required": True, "content": {body_type: {"schema": {
                "type": "object", "required": required or [],
                "properties": {k: ({"type": "string", "format": "binary", "description": v} if body_type.startswith("multipart")
                                   else {"type": _type_of(v), "description": v}) for k, v in body.items()}}}}}
        who = f"{fn.__module__}.{fn.__qualname__}"
        for m in methods:
            old = _ROUTE_OWNERS.setdefault((rule, m), who)
            if old != who:  # Flask would keep the first quietly

                raise DuplicateRegistration("API route", f"{m} {rule}", old, who)
            PATHS.setdefault(_openapi_path(rule), {})[m.lower()] = op
        return wrapper

    return deco


def _type_of(desc: str) -> str:
    head = desc.split(":", 1)[0].strip()
    return head if head in ("string", "integer", "boolean", "number", "array", "object") else "string"


_RESPONSES = {
    "200": {"description": "OK"},
    "400": {"description": "Validation error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    "401": {"description": "No or bad bearer token"},
    "403": {"description": "Role too low (or API closed)"},
    "404": {"description": "Not found"},
}


def principal() -> Principal:
    return g.principal


# --- validation ------------------------------------------------------------------

def body_json() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object", "body")
    return data


def req_str(data: dict, name: str, *, required: bool = True, max_len: int = 2000,
            choices: tuple[str, ...] | list[str] | None = None) -> str | None:
    val = data.get(name)
    if val is None or (isinstance(val, str) and not val.strip()):
        if required:
            raise ApiError(400, f"{name} is required", name)
        return None
    if not isinstance(val, str):
        raise ApiError(400, f"{name} must be a string", name)
    val = val.strip()
    if len(val) > max_len:
        raise ApiError(400, f"{name} must be at most {max_len} characters", name)
    if choices is not None and val not in choices:
        raise ApiError(400, f"{name} must be one of: {', '.join(choices)}", name)
    return val


def _given(data: dict, name: str, required: bool):
    """The field's value; None when absent or empty and optional, a 400 when required."""
    val = data.get(name)
    if val is None or val == "":
        if required:
            raise ApiError(400, f"{name} is required", name)
        return None
    return val


# Database integers are 64-bit: a larger value would raise OverflowError in the
# driver (a 500), so it is refused here, naming the field.
INT_MAX = 2**63 - 1


def req_int(data: dict, name: str, *, required: bool = True, minimum: int | None = None,
            maximum: int | None = None) -> int | None:
    val = _given(data, name, required)
    if val is None:
        return None
    try:
        if isinstance(val, bool) or (isinstance(val, str) and len(val) > 20):
            raise ValueError
        val = int(val)
        if not -INT_MAX <= val <= INT_MAX:
            raise ValueError
    except (TypeError, ValueError):
        raise ApiError(400, f"{name} must be a whole number", name) from None
    if minimum is not None and val < minimum:
        raise ApiError(400, f"{name} must be at least {minimum}", name)
    if maximum is not None and val > maximum:
        raise ApiError(400, f"{name} must be at most {maximum}", name)
    return val


def req_datetime(data: dict, name: str, *, required: bool = True) -> datetime | None:
    """ISO 8601; a time without an offset is Shanghai time (what a manager means)."""
    val = _given(data, name, required)
    if val is None:
        return None
    try:
        dt = datetime.fromisoformat(str(val))
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date-time such as 2026-09-15T09:00", name) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=CST)


def req_date(data: dict, name: str, *, required: bool = True) -> date | None:
    val = _given(data, name, required)
    if val is None:
        return None
    try:
        return date.fromisoformat(str(val))
    except ValueError:
        raise ApiError(400, f"{name} must be a date such as 2026-09-15", name) from None


def query_args() -> dict:
    return request.args.to_dict()


def page_args(default: int = 50) -> tuple[int, int]:
    q = query_args()
    limit = req_int(q, "limit", required=False, minimum=1, maximum=500) or default
    offset = req_int(q, "offset", required=False, minimum=0, maximum=10**9) or 0
    return limit, offset


