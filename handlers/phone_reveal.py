"""An owner's number for the staff member who must call them, on purpose and
logged (issue 13, item 8). Cards and texts to staff show numbers masked
(138****0002); the person holding the work taps 「查看电话」 on the card
(EventKey "phone:T12" / "phone:B12") or sends 「电话 T12」 / 「电话 B12」 in the
WeCom app, and gets the number in the app chat. Who may: handlers/privacy.py
(`may_reveal`: the holder, the department's supervisor, managers) for tickets;
for bookings the team delivering the service, supervisors of it and managers.
Every answer, given or refused, is an audit row (`phone.reveal` /
`phone.reveal_refused`), as the console's and the API's reveals are.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers import privacy, scope
from handlers.capability import Capability
from handlers.message import Context, Message, Outcome
from store.models import AuditLog, Owner, Staff
from store.models.membership import Booking
from store.models.tickets import Ticket

capability = Capability("phone_reveal")
BUTTON_TEXT = "查看电话"


def button(number: str) -> dict:
    """The card button that asks for the number of ticket "T12" / booking "B12"."""
    return {"text": BUTTON_TEXT, "style": 2, "key": f"phone:{number}"}


def _audit(session: Session, userid: str, action: str, target: str, now: datetime, **detail) -> None:
    session.add(AuditLog(actor=userid, action=action, target=target, detail={"via": "wecom", **detail},
                         created_at=now))


def _ticket(session: Session, n: int, userid: str, now: datetime) -> str:
    t = session.get(Ticket, n)
    viewer = scope.for_userid(session, userid)
    if t is None or not scope.can_act_on_ticket(viewer, t):
        return f"没有找到工单T{n}。"
    if not privacy.may_reveal(viewer, t):
        _audit(session, userid, "phone.reveal_refused", f"ticket:{t.id}", now)
        return f"工单{t.number}的业主电话只有负责人、部门主管或经理可以查看；接单后即可查看。"
    _audit(session, userid, "phone.reveal", f"ticket:{t.id}", now, owner_id=t.owner_id)
    if not t.contact_phone:
        return f"工单{t.number}没有登记联系电话。"
    return f"工单{t.number} {t.contact_name or '业主'}：{t.contact_phone}（本次查看已记入审计日志）"


def _booking(session: Session, n: int, userid: str, now: datetime) -> str:
    b = session.get(Booking, n)
    staff = session.scalar(select(Staff).where(Staff.userid == userid, Staff.active.is_(True)))
    if b is None or staff is None:
        return f"没有找到预约B{n}。"
    viewer = scope.for_staff(session, staff)
    owner = session.get(Owner, b.owner_id) if b.owner_id else None
    allowed = (viewer.sees_all or staff.team == b.team or b.team in viewer.teams)
    if not allowed:
        _audit(session, userid, "phone.reveal_refused", f"booking:{b.id}", now)
        return f"预约B{b.id}的业主电话只有提供服务的同事、主管或经理可以查看。"
    _audit(session, userid, "phone.reveal", f"booking:{b.id}", now, owner_id=b.owner_id)
    if owner is None or not owner.phone:
        return f"预约B{b.id}没有登记联系电话。"
    return f"预约B{b.id} {owner.name}：{owner.phone}（本次查看已记入审计日志）"


def reveal(session: Session, number: str, userid: str, now: datetime) -> str:
    """The answer to 「电话 T12」 / 「电话 B12」 (or the card button) from `userid`."""
    kind, digits = number[:1].upper(), number[1:]
    if not digits.isdigit() or len(digits) > 9:
        return "格式：电话 T12（工单）或 电话 B12（预约）"
    return (_ticket if kind == "T" else _booking)(session, int(digits), userid, now)


@capability.text_command("phone_reveal", r"^(?:电话|查看电话|联系电话)\s*(?P<kind>[TtBb])\s*(?P<n>\d+)$",
                       chats=("staff",), roles=("staff",), why="staff ask for the owner's number (logged)")
def cmd_reveal(ctx: Context, msg: Message, route) -> Outcome:
    a = ((route.args or {}).get("match") if route is not None else None) or {}
    return Outcome(replies=[reveal(ctx.session, f"{a.get('kind', '')}{a.get('n', '')}", msg.sender, ctx.now)],
                   intent="command")


@capability.card("phone:")
def on_click(ctx: Context, msg: Message, key: str) -> Outcome:
    if msg.role != "staff":
        return Outcome(intent="event")
    # No card update: the card keeps its buttons; the number comes as a text in the app chat.
    return Outcome(replies=[reveal(ctx.session, key.split(":", 1)[1], msg.sender, ctx.now)], intent="command")
