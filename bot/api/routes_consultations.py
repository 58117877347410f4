"""/api/v1/consultations: the consultation inbox for tools (list, one case, reply, close)."""
from __future__ import annotations

from flask import g, jsonify

from bot.api.common import ApiError, api_route, body_json, principal, query_args, req_str
from bot.console.auth import event_actor
from bot.console.queries import deliver, viewer
from ground import clock
from handlers import privacy, scope
from handlers.consultations import core


def _core():
    return core


def _case_or_404(case_id: int):
    """The case; 404 when missing or outside the caller's scope (handlers/scope.py)."""
    c = _core().get_case(g.db, case_id)
    if c is None or not scope.can_see_consultation(g.db, viewer(), c):
        raise ApiError(404, f"no consultation C{case_id}", "case_id")
    return c


def _shown(d: dict) -> dict:
    """Owners' words with numbers masked unless the caller sees them in full (handlers/privacy.py)."""
    v = viewer()
    for key in ("title", "question"):
        d[key] = privacy.for_viewer(v, d.get(key))
    for e in d.get("entries") or []:
        e["text"] = privacy.for_viewer(v, e.get("text"))
    return d


def _result(res, case_id: int):
    if not res.ok:
        raise ApiError(409, res.message)
    now = clock.now()
    deliver(g.db, res.pushes, now)
    return jsonify({"message": res.message, "consultation": _shown(_core().as_dict(g.db, _case_or_404(case_id), now))})


@api_route("/consultations", ["GET"], "staff", "Consultations handed to a person, waiting ones first",
           query={"state": "string: open (default) / waiting / answered / closed / all"})
def consultations_list():
    state = req_str(query_args(), "state", required=False,
                    choices=("open", "waiting", "answered", "closed", "all")) or "open"
    now = clock.now()
    core = _core()

    return jsonify({"consultations": [_shown(core.as_dict(g.db, c, now, with_entries=False))
                                      for c in core.listing(g.db, state, viewer=viewer())]})


@api_route("/consultations/<int:case_id>", ["GET"], "staff", "One consultation with its conversation")
def consultation_get(case_id: int):
    return jsonify(_shown(_core().as_dict(g.db, _case_or_404(case_id), clock.now())))


@api_route("/consultations/<int:case_id>/reply", ["POST"], "staff",
           "Answer the owner (a customer-service text within 48 h, else the reply template)",
           body={"text": "string: the answer, sent as written"}, required=["text"])
def consultation_reply(case_id: int):
    _case_or_404(case_id)
    text = req_str(body_json(), "text", max_len=1500)
    res = _core().reply(g.db, case_id, event_actor(g.db, principal()), text, clock.now(), via="api")
    return _result(res, case_id)


@api_route("/consultations/<int:case_id>/close", ["POST"], "staff", "Close a consultation (stops its clock)",
           body={"note": "string: why (optional)"})
def consultation_close(case_id: int):
    _case_or_404(case_id)
    note = req_str(body_json(), "note", required=False, max_len=200) or ""
    res = _core().close(g.db, case_id, event_actor(g.db, principal()), clock.now(), via="api", note=note)
    return _result(res, case_id)
