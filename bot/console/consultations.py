"""Console: the consultation inbox (/console/consultations). Each handoff to a
person is a case: the owner's words, the conversation, the first-response
clock, who holds it; staff answer here and the answer reaches the owner."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from bot.console.auth import event_actor
from bot.console.queries import deliver, viewer
from bot.console.views import page
from ground import clock
from handlers import privacy, scope
from handlers.consultations import core

bp = Blueprint("consultations", __name__, url_prefix="/console/consultations")

FILTERS = {"open": "未关闭", "waiting": "等待回复", "answered": "已回复", "closed": "已关闭", "all": "全部"}


def _core():
    return core


def _viewer():
    return viewer()


def _visible(case_id: int):
    """The case, or None when missing or outside the sign-in's scope (handlers/scope.py)."""
    c = _core().get_case(g.db, case_id)
    return c if c is not None and scope.can_see_consultation(g.db, _viewer(), c) else None


def _missing(case_id: int):
    return render_template("message.html", title="咨询不存在", text=f"没有咨询 C{case_id}"), 404


def _mask(text):
    """Owners' words as this sign-in may read them: numbers masked below a manager (handlers/privacy.py)."""
    return privacy.for_viewer(_viewer(), text)


@bp.get("/")
@page("staff")
def inbox():
    core = _core()
    state = request.args.get("state") if request.args.get("state") in FILTERS else "open"
    now = clock.now()
    rows = []
    for c in core.listing(g.db, state, viewer=_viewer()):
        chip = core.clock_chip(core.clock_of(g.db, c), now) if c.state == "waiting" else None
        rows.append((c, core.owner_of(g.db, c), chip))
    return render_template("consultations.html", rows=rows, state=state, filters=FILTERS,
                           labels=core.STATE_LABELS, promise=core.promise(), mask=_mask)


@bp.get("/<int:case_id>")
@page("staff")
def case(case_id: int):
    core = _core()
    c = _visible(case_id)
    if c is None:
        return _missing(case_id)
    now = clock.now()
    return render_template("consultation.html", c=c, owner=core.owner_of(g.db, c),
                           chip=core.clock_chip(core.clock_of(g.db, c), now), entries=core.entries(g.db, c),
                           labels=core.STATE_LABELS, me_actor=event_actor(g.db, g.principal), mask=_mask)


def _act(case_id: int, fn, ok_text: str | None = None):
    if _visible(case_id) is None:
        return _missing(case_id)
    now = clock.now()
    res = fn(now)
    if res.ok:
        deliver(g.db, res.pushes, now)
    flash(ok_text if (res.ok and ok_text) else res.message, "ok" if res.ok else "error")
    return redirect(url_for("consultations.case", case_id=case_id))


@bp.post("/<int:case_id>/reply")
@page("staff")
def reply(case_id: int):
    text = (request.form.get("text") or "").strip()[:1500]
    actor = event_actor(g.db, g.principal)
    return _act(case_id, lambda now: _core().reply(g.db, case_id, actor, text, now, via="console"))


@bp.post("/<int:case_id>/take")
@page("staff")
def take(case_id: int):
    actor = event_actor(g.db, g.principal)
    return _act(case_id, lambda now: _core().pick_up(g.db, case_id, actor, now, via="console"))


@bp.post("/<int:case_id>/close")
@page("staff")
def close(case_id: int):
    actor = event_actor(g.db, g.principal)
    note = (request.form.get("note") or "").strip()[:200]
    return _act(case_id, lambda now: _core().close(g.db, case_id, actor, now, via="console", note=note))
