"""Revealing an owner's number on a ticket (issue 13, item 8): staff see it
masked; the ones who must call the owner (the holder, the department's
supervisor, managers: handlers/privacy.py::may_reveal) open it on purpose,
and every opening is an audit row `phone.reveal`."""
from __future__ import annotations

from flask import g, render_template

from bot.console import bp, queries as Q
from bot.console.auth import audit
from bot.console.views import page
from store.models import Ticket
from handlers import privacy, scope


@bp.post("/tickets/<int:ticket_id>/contact")
@page("staff")
def ticket_contact(ticket_id: int):
    t = g.db.get(Ticket, ticket_id)
    viewer = Q.viewer()
    if t is None or not scope.can_see_ticket(viewer, t):
        return render_template("message.html", title="工单不存在", text=f"没有工单 T{ticket_id}"), 404
    if not privacy.may_reveal(viewer, t):
        audit(g.db, g.principal, "phone.reveal_refused", f"ticket:{t.id}")
        return render_template("message.html", title="无权查看",
                               text="只有工单负责人、部门主管或经理可以查看完整号码。"), 403
    audit(g.db, g.principal, "phone.reveal", f"ticket:{t.id}", {"owner_id": t.owner_id})
    return render_template("message.html", title=f"T{t.id} 联系电话",
                           text=f"{t.contact_name or '业主'}：{t.contact_phone or '未登记'}（本次查看已记入审计日志）")
