"""Text commands: staff in the WeCom app chat (接单 T12, 出发/到场 T12, 进度 T12 备注,
完成 T12 备注, 转派 T12 姓名, 回访 T12 备注, 接管 T12, 我的工单) and owners in the OA
chat (我的工单, 催一下 T12). They do what the card buttons do."""
from __future__ import annotations

import re

from sqlalchemy import or_, select

from handlers import privacy, scope
from handlers.identity import find_owner
from handlers.message import Context, Message, Outcome
from handlers.tickets import core
from handlers.tickets.capability import capability
from store.models import Ticket

_T = r"\s*[Tt]?\s*(?P<n>\d+)"
_NOTE = r"(?:\s*[,，:：]?\s*(?P<note>.*))?$"
STAFF = ("staff",)


def _args(route) -> dict:
    match = (route.args or {}).get("match") if route is not None else None
    return match if isinstance(match, dict) else {}


_RAW_NOTE = re.compile(r"^\s*[^\sTtＴｔ\d０-９]+\s*[TtＴｔ]?\s*\d+\s*[,，:：]?\s*(.*)$", re.S)


def _note(msg: Message, a: dict) -> str:
    """The note as the staff member typed it: the router's copy is NFKC-normalized
    (，！ become ,!), and the owner must read what was written."""
    m = _RAW_NOTE.match(msg.text or "")
    return (m.group(1) if m else (a.get("note") or "")).strip()


def _out(res: core.Result) -> Outcome:
    return Outcome(replies=[res.message], pushes=res.pushes, intent="command")


def _out_of_scope(ctx: Context, msg: Message, route, holder_only: bool = False) -> Outcome | None:
    """The building scope (handlers/scope.py), the same rule as the console's and the API's:
    a staff member acts on their buildings' tickets, their department's (supervisors),
    those assigned to them and those whose card reached them. `holder_only`: the ticket
    functions already let only the holder or a supervisor act (O10, 首问负责制), so for
    plain staff their own answer stands."""
    digits = str(_args(route).get("n") or "")
    if len(digits) > 9:  # no such ticket (and int() of 5,000 digits would fail)
        return Outcome(replies=[f"没有找到工单T{digits[:12]}。"], intent="command")
    ticket = ctx.session.get(Ticket, int(digits)) if digits else None
    if ticket is None:
        return None
    viewer = scope.for_userid(ctx.session, msg.sender)
    if (holder_only and viewer.role == "staff") or scope.can_act_on_ticket(viewer, ticket):
        return None  # missing tickets are answered by the ticket functions themselves
    return Outcome(replies=[f"工单{ticket.number}不在您负责的范围内，如需处理请联系主管。"], intent="command")


def _staff_step(step, holder_only: bool = False):
    """A staff command on one ticket: the scope rule first, then the ticket function."""
    def handler(ctx: Context, msg: Message, route) -> Outcome:
        refused = _out_of_scope(ctx, msg, route, holder_only=holder_only)
        if refused:
            return refused
        a = _args(route)
        return _out(step(ctx, msg, int(a["n"]), a))

    return handler


# name, phrase, what it does, the ticket function, whether only the holder acts (O10).
# They do what the card buttons do.
_STAFF_STEPS = (
    ("ticket_accept", rf"^(?:接单|抢单){_T}$", "staff accepts a ticket (O10)",
     lambda ctx, msg, n, a: core.accept(ctx.session, n, msg.sender, ctx.now), False),
    ("ticket_on_the_way", rf"^出发{_T}$", "staff on the way",
     lambda ctx, msg, n, a: core.on_the_way(ctx.session, n, msg.sender, ctx.now), True),
    ("ticket_on_site", rf"^(?:到场|已到场|到达){_T}$", "staff on site (O5)",
     lambda ctx, msg, n, a: core.on_site(ctx.session, n, msg.sender, ctx.now), True),
    ("ticket_progress", rf"^进度{_T}{_NOTE}", "staff reports progress (O8, O4 plan)",
     lambda ctx, msg, n, a: core.progress(ctx.session, n, msg.sender, ctx.now, _note(msg, a)), True),
    ("ticket_done", rf"^(?:完成|已完成|完工){_T}{_NOTE}", "staff completes a ticket (O9)",
     lambda ctx, msg, n, a: core.complete(ctx.session, n, msg.sender, ctx.now, _note(msg, a)), True),
    ("ticket_transfer", rf"^转派{_T}(?:\s+(?P<to>\S+))?\s*$", "staff hands a ticket to a colleague",
     lambda ctx, msg, n, a: core.transfer(ctx.session, n, msg.sender, ctx.now, a.get("to") or None), True),
    ("ticket_callback", rf"^回访{_T}{_NOTE}", "customer service called the owner back (O11)",
     lambda ctx, msg, n, a: core.called_back(ctx.session, n, msg.sender, ctx.now, _note(msg, a)), False),
    ("ticket_takeover", rf"^接管{_T}$", "a supervisor takes an escalated ticket",
     lambda ctx, msg, n, a: core.take_over(ctx.session, n, msg.sender, ctx.now), False),
)
for _name, _phrase, _why, _step, _holder_only in _STAFF_STEPS:
    capability.text_command(_name, _phrase, chats=STAFF, roles=STAFF, why=_why)(_staff_step(_step, _holder_only))


@capability.text_command("ticket_mine", r"^我的工单$", chats=("private", "staff"), why="list my tickets")
def cmd_mine(ctx: Context, msg: Message, route) -> Outcome:
    s = ctx.session
    if msg.chat == "staff" and msg.role == "staff":
        rows = s.scalars(select(Ticket).where(Ticket.assignee == msg.sender, Ticket.state.in_(core.OPEN_STATES))
                         .order_by(Ticket.id)).all()
        waiting = [t for t in s.scalars(select(Ticket).where(Ticket.state == "open")).all()
                   if msg.sender in (t.notified or [])]
        # Staff read numbers masked (handlers/privacy.py); the holder's work card has the contact.
        lines = [privacy.mask_text(core.describe(s, t, with_holder=False), strict=True) for t in rows]
        lines += [privacy.mask_text(core.describe(s, t), strict=True) + "  → 回复「接单 " + t.number + "」"
                  for t in waiting]
        text = "您负责的工单：\n" + "\n".join(lines) if lines else "您目前没有待处理的工单。"
        return Outcome(replies=[text], intent="command")
    owner = find_owner(s, msg)
    cond = [Ticket.sender == msg.sender] + ([Ticket.owner_id == owner.id] if owner else [])
    rows = s.scalars(select(Ticket).where(or_(*cond)).order_by(Ticket.id.desc()).limit(10)).all()
    if not rows:
        return Outcome(replies=["您还没有工单。报修或投诉直接发消息告诉我即可。"], intent="command")
    return Outcome(replies=["您的工单：\n" + "\n".join(core.describe(s, t) for t in rows)], intent="command")


@capability.text_command("ticket_nudge", rf"^(?:催一下|催办|催单|催促){_T}\s*$", chats=("private",),
                         why="owner nudges a ticket")
def cmd_nudge(ctx: Context, msg: Message, route) -> Outcome:
    s, n = ctx.session, int(_args(route)["n"])
    ticket = core.get_ticket(s, n)
    owner = find_owner(s, msg)
    if ticket is None or not (ticket.sender == msg.sender or (owner and ticket.owner_id == owner.id)):
        return Outcome(replies=[f"没有找到您的工单T{n}，回复「我的工单」查看。"], intent="command")
    if ticket.state in ("closed", "completed"):
        return Outcome(replies=[f"工单{ticket.number}已{core.STATE_LABELS[ticket.state]}。"], intent="command")
    ticket.nudges += 1
    core.record(s, ticket, msg.sender, "nudged", ctx.now, count=ticket.nudges, holder=ticket.assignee)
    out = Outcome(intent="command")
    if ticket.state == "waiting_home":
        out.replies.append(f"工单{ticket.number}在等待核对房屋：请回复房号和预留手机号后四位，例如「1-1201 0002」。")
        return out
    holder = ticket.assignee
    targets = [holder] if holder else list(ticket.notified or [])
    for u in targets:
        out.pushes.append(core.staff_text(u, f"业主催办工单{ticket.number}（第{ticket.nudges}次）："
                                             f"{privacy.excerpt(ticket.content, 40)}，请尽快处理并回复进度。",
                                          f"ticket:{ticket.id}:nudge:{ticket.nudges}:{u}", ticket, priority=1))
    if holder:
        phone = core.staff_phone(s, holder)
        out.replies.append(f"已为您催办。工单{ticket.number}由{core.staff_name(s, holder)}负责"
                           + (f"（电话{phone}）" if phone else "") + f"，当前{core.STATE_LABELS[ticket.state]}。")
    else:
        out.replies.append(f"已为您催办。工单{ticket.number}正在等待值班人员接单，我们已再次提醒。")
    return out
