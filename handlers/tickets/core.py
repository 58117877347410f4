"""Ticket life cycle: every transition records an event (O20), tells the clock
engine (handlers/clocks/) so it stops and starts the clocks the policy ties to
it, and returns the pushes it causes.

Both the card clicks and the text commands call the functions here, so a
button and "接单 T12" behave the same.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ground import clock
from ground.clock import CST
from ground.limits import in_cs_window
from handlers import clocks, conversation, phone_reveal, privacy
from handlers.message import Push
from handlers.tickets.policy import home_repair, policy, roster, specs_for  # noqa: F401  (home_repair: callers)
from store.models import OutboxMessage, Owner, Staff, Ticket, TicketEvent

log = logging.getLogger(__name__)

# The owner's answering exchange after a result (O9); handlers/tickets/survey.py reads the answers.
SURVEY_CONV = "ticket_survey"
# The exchange that waits for a complaint's details (intake.py opens it; attachments.py adds
# photos sent before the words to it).
DETAILS_CONV = "ticket_details"
DETAILS_TTL = timedelta(hours=2)

STATE_LABELS = {
    "waiting_home": "待核对房号", "open": "待接单", "accepted": "已受理", "on_the_way": "正在赶往",
    "on_site": "处理中", "completed": "已完成待评价", "reopened": "主管跟进中", "closed": "已办结",
}
CATEGORY_LABELS = {
    "repair": "维修", "plumbing": "水电维修", "electrical": "电路", "facility": "公共设施", "sanitation": "环境卫生",
    "environment": "环境卫生", "security": "安保", "noise": "噪音", "parking": "停车", "neighbour": "邻里纠纷",
    "other": "其他",
}
OPEN_STATES = ("waiting_home", "open", "accepted", "on_the_way", "on_site", "reopened")
ACTIVE_CLOCK_STATES = clocks.ACTIVE_STATES


@dataclass
class Result:
    """What a staff or owner action did: a message for the actor, pushes for others."""

    ok: bool
    message: str
    pushes: list[Push] = field(default_factory=list)


def number(ticket_id: int) -> str:
    return f"T{ticket_id}"


def parse_number(text: str) -> int | None:
    text = (text or "").strip().upper().lstrip("T")
    return int(text) if text.isdigit() else None


def class_label(priority: str) -> str:
    return policy().classes[priority].label


def staff_name(session: Session, userid: str | None) -> str:
    if not userid:
        return "（暂无）"
    s = session.scalar(select(Staff).where(Staff.userid == userid))
    return s.name if s else userid


def staff_phone(session: Session, userid: str | None) -> str:
    s = session.scalar(select(Staff).where(Staff.userid == userid)) if userid else None
    return s.phone or "" if s else ""


def find_staff_by_name(session: Session, name: str) -> Staff | None:
    return session.scalar(select(Staff).where(Staff.active.is_(True), (Staff.name == name) | (Staff.userid == name)))


def is_manager(session: Session, userid: str) -> bool:
    """Supervisors and managers may act on any ticket (escalations reach them)."""
    r = roster()
    if userid in (r.escalation.get("supervisor"), r.escalation.get("manager")):
        return True
    s = session.scalar(select(Staff).where(Staff.userid == userid))
    return bool(s and s.role in ("supervisor", "manager"))


# ---------------------------------------------------------------- events and clocks

def record(session: Session, ticket: Ticket, actor: str, action: str, now: datetime, **detail) -> TicketEvent:
    ev = TicketEvent(ticket_id=ticket.id, at=now, actor=actor, action=action, detail=detail)
    session.add(ev)
    session.flush()
    return ev


def fire(session: Session, ticket: Ticket, action: str, actor: str, now: datetime,
         clock_start: datetime | None = None, quiet: bool = False, **detail) -> None:
    """Record `action` on the ticket (unless `quiet`: recorded already); the clock
    engine stops the clocks it ends and starts the ones it begins (clocks.yaml)."""
    if not quiet:
        record(session, ticket, actor, action, now, **detail)
    clocks.on_event(session, "ticket", f"ticket:{ticket.id}", action, now, specs_for(ticket),
                    start_at=clock_start, round=ticket.reopen_count, ticket_id=ticket.id)


# ---------------------------------------------------------------- pushes

def owner_openid(session: Session, ticket: Ticket) -> str | None:
    if ticket.channel == "mp":
        return ticket.sender
    owner = session.get(Owner, ticket.owner_id) if ticket.owner_id else None
    return owner.openid if owner else None


def owner_push(session: Session, ticket: Ticket, text: str, key: str, now: datetime | None = None) -> list[Push]:
    """A progress message to the owner's OA chat (O8), once per `key`.

    PLATFORM.md: customer-service texts only reach an owner within 48 h of their
    last message; outside it a template message is used when clocks.yaml names
    one (else the text is tried and the sender records the refusal)."""
    openid = owner_openid(session, ticket)
    if not openid:
        return []
    now = now or clock.now()
    common = dict(dedup_key=f"ticket:{ticket.id}:owner:{key}", priority=1 if ticket.priority == "urgent" else 3,
                  source=f"ticket:{ticket.id}")
    pol = policy()
    owner = session.scalar(select(Owner).where(Owner.openid == openid))
    last = owner.last_inbound_at if owner else None
    in_window = in_cs_window(last, now)
    if pol.owner_template_id and not in_window:
        return [Push(channel="mp", recipient=openid, kind="template", payload={
            "template_id": pol.owner_template_id,
            "data": {"first": {"value": text[:200]}, "keyword1": {"value": ticket.number},
                     "keyword2": {"value": STATE_LABELS.get(ticket.state, ticket.state)},
                     "remark": {"value": "回复「我的工单」查看详情"}}}, **common)]
    return [Push(channel="mp", recipient=openid, kind="text", payload={"content": text}, **common)]


def staff_text(userid: str, text: str, dedup_key: str | None, ticket: Ticket, priority: int = 3) -> Push:
    """A text to staff: owners' numbers in it masked (handlers/privacy.py; quote ticket
    text with privacy.excerpt so a cut number is masked too)."""
    return Push(channel="wecom", recipient=userid, kind="text", payload={"content": privacy.mask_text(text)},
                dedup_key=dedup_key, priority=priority, source=f"ticket:{ticket.id}")


def _card_fields(session: Session, ticket: Ticket) -> list[dict]:
    fields = [{"keyname": "房号", "value": ticket.room or "未核对"},
              {"keyname": "联系人", "value": ticket.contact_name or "业主"}]
    if ticket.contact_phone:  # masked: the holder reveals it on purpose, logged (handlers/phone_reveal.py)
        fields.append({"keyname": "电话", "value": privacy.mask_text(ticket.contact_phone)})
    fields.append({"keyname": "登记", "value": ticket.created_at.astimezone(CST).strftime("%m-%d %H:%M")})
    if ticket.assignee:
        fields.append({"keyname": "负责人", "value": staff_name(session, ticket.assignee)})
    return fields


def card(session: Session, ticket: Ticket, task_id: str, title: str, buttons: list[tuple[str, str, int]],
         desc: str | None = None) -> dict:
    """A WeCom button_interaction template card. Button keys are "ticket:<action>:T<id>";
    task_id is unique per card (WeCom requires it per app)."""
    return {
        "card_type": "button_interaction",
        "source": {"desc": "管家工单", "desc_color": 0},
        "main_title": {"title": title[:36],
                       "desc": desc or f"{class_label(ticket.priority)} · "
                                       f"{CATEGORY_LABELS.get(ticket.category, ticket.category)} · "
                                       f"{STATE_LABELS.get(ticket.state, ticket.state)}"},
        "sub_title_text": privacy.excerpt(ticket.content, 120),
        "horizontal_content_list": _card_fields(session, ticket),
        "task_id": task_id,
        "button_list": [{"text": t, "style": s, "key": f"ticket:{a}:{ticket.number}"} for t, a, s in buttons],
    }


def card_push(session: Session, ticket: Ticket, recipients: list[str], task_id: str, title: str,
              buttons: list[tuple[str, str, int]], desc: str | None = None) -> Push:
    return Push(channel="wecom", recipient="|".join(recipients), kind="template_card",
                payload={"card": card(session, ticket, task_id, title, buttons, desc)},
                dedup_key=f"ticket:card:{task_id}", priority=0 if ticket.priority == "urgent" else 3,
                source=f"ticket:{ticket.id}")


def update_card_push(ticket: Ticket, userids: list[str], response_code: str | None, text: str) -> list[Push]:
    """Greys out the clicked card's buttons for everyone who got it (PLATFORM.md:
    update_template_card, the response_code is usable once)."""
    if not response_code:
        return []
    return [Push(channel="wecom", recipient=",".join(dict.fromkeys(userids)), kind="update_card",
                 payload={"response_code": response_code, "button": {"replace_name": text}},
                 dedup_key=f"ticket:update:{response_code}"[:128], priority=1, source=f"ticket:{ticket.id}")]


def close_cards(session: Session, ticket: Ticket, text: str, skip_task: str | None = None,
                callback: bool = False) -> list[Push]:
    """Greys out the ticket's earlier cards, so a text command (or a click on one
    card) settles every copy. Uses the response_code each card's send returned
    (the outbound sender keeps it in payload["_result"]); each code once.
    `callback`: the call-back cards (O11) instead of the work cards."""
    pushes: list[Push] = []
    rows = session.scalars(select(OutboxMessage).where(
        OutboxMessage.dedup_key.like(f"ticket:card:{ticket.number}%"), OutboxMessage.kind == "template_card")).all()
    for r in rows:
        task = r.dedup_key[len("ticket:card:"):]
        if task == skip_task or not re.fullmatch(rf"{ticket.number}[vc]\d+(l\d+)?", task):
            continue
        keys = [b.get("key", "") for b in (r.payload or {}).get("card", {}).get("button_list", [])]
        if any(":callback:" in k for k in keys) != callback:
            continue
        code = ((r.payload or {}).get("_result") or {}).get("response_code")
        if not code or session.scalar(select(OutboxMessage.id).where(
                OutboxMessage.dedup_key == f"ticket:update:{code}"[:128])) is not None:
            continue
        pushes += update_card_push(ticket, _users(r.recipient), code, text)
    return pushes


def _users(recipient: str) -> list[str]:
    return [u for u in recipient.replace("|", ",").split(",") if u]


DISPATCH_BUTTONS = [("接单", "accept", 1), ("转派", "transfer", 2)]
WORK_BUTTONS = [("到场", "onsite", 2), ("完成", "done", 1), ("转派", "transfer", 2)]


def work_card(session: Session, ticket: Ticket, userid: str, title: str | None = None) -> Push:
    """The holder's card; 「查看电话」 gives them the owner's number, logged."""
    ticket.version += 1
    push = card_push(session, ticket, [userid], f"{ticket.number}v{ticket.version}",
                     title or f"工单{ticket.number} 由您负责", WORK_BUTTONS)
    if ticket.contact_phone:
        push.payload["card"]["button_list"].append(phone_reveal.button(ticket.number))
    return push


# ---------------------------------------------------------------- dispatch

def dispatch(session: Session, ticket: Ticket, now: datetime, actor: str = "bot") -> list[Push]:
    """Card to the people on duty for the ticket's team and building (O6: and the
    department head for important requests)."""
    r, cls = roster(), policy().classes[ticket.priority]
    on_duty = r.on_duty(ticket.team, ticket.building)
    people = on_duty if cls.notify_all_on_duty else on_duty[:1]
    if cls.notify_head:
        people = people + [r.head(ticket.team)]
    people = list(dict.fromkeys(people))
    ticket.notified = people
    ticket.version += 1
    record(session, ticket, actor, "dispatched", now, to=people, team=ticket.team, version=ticket.version)
    return [card_push(session, ticket, people, f"{ticket.number}v{ticket.version}",
                      f"新工单{ticket.number}【{class_label(ticket.priority)}】", DISPATCH_BUTTONS)]


def redispatch(session: Session, ticket: Ticket, now: datetime, actor: str = "clock",
               exclude: str | None = None) -> list[Push] | None:
    """The next person on duty who has not had the card yet; None when nobody is left."""
    on_duty = roster().on_duty(ticket.team, ticket.building)
    nxt = next((u for u in on_duty if u not in (ticket.notified or []) and u != exclude), None)
    if nxt is None:
        return None
    ticket.notified = list(ticket.notified or []) + [nxt]
    ticket.version += 1
    record(session, ticket, actor, "redispatched", now, to=nxt, version=ticket.version)
    return [card_push(session, ticket, [nxt], f"{ticket.number}v{ticket.version}",
                      f"转派工单{ticket.number}【{class_label(ticket.priority)}】请接单", DISPATCH_BUTTONS)]


# ---------------------------------------------------------------- staff actions

def get_ticket(session: Session, ticket_id: int | None) -> Ticket | None:
    return session.get(Ticket, ticket_id) if ticket_id else None


def accept(session: Session, ticket_id: int, userid: str, now: datetime, response_code: str | None = None,
           task_id: str | None = None) -> Result:
    """O10: the first to accept owns the ticket. The conditional UPDATE is the
    race guard: of two simultaneous clicks exactly one matches `assignee IS NULL`."""
    won = session.execute(
        update(Ticket).where(Ticket.id == ticket_id, Ticket.assignee.is_(None), Ticket.state == "open")
        .values(assignee=userid, state="accepted", accepted_at=now)
        .execution_options(synchronize_session=False)).rowcount == 1
    ticket = get_ticket(session, ticket_id)
    if ticket is None:
        return Result(False, f"没有找到工单{number(ticket_id)}。")
    session.refresh(ticket)
    if not won:
        if ticket.assignee == userid:
            return Result(True, f"工单{ticket.number}已由您负责。")
        holder = staff_name(session, ticket.assignee)
        msg = (f"工单{ticket.number}已由{holder}接单，无需重复处理。" if ticket.assignee
               else f"工单{ticket.number}当前状态为「{STATE_LABELS.get(ticket.state, ticket.state)}」，不能接单。")
        record(session, ticket, userid, "accept_refused", now, holder=ticket.assignee)
        return Result(False, msg, update_card_push(ticket, [userid], response_code, f"已由{holder}接单"))
    name = staff_name(session, userid)
    fire(session, ticket, "accepted", userid, now, by=name)
    pushes = update_card_push(ticket, list(ticket.notified or []) + [userid], response_code, f"{name}已接单")
    pushes += close_cards(session, ticket, f"{name}已接单", skip_task=task_id)
    pushes.append(work_card(session, ticket, userid))
    phone = staff_phone(session, userid)
    pushes += owner_push(session, ticket, f"您的工单{ticket.number}已由{name}受理"
                         + (f"（电话{phone}）" if phone else "") + "，我们会尽快处理。", "accepted")
    return Result(True, f"您已接单{ticket.number}，请按时限处理。", pushes)


def _may_act(session: Session, ticket: Ticket, userid: str) -> bool:
    return ticket.assignee == userid or is_manager(session, userid)


def _check(session: Session, ticket: Ticket | None, userid: str, states: tuple[str, ...]) -> str | None:
    if ticket is None:
        return "没有找到这个工单。"
    if not ticket.assignee:
        return f"工单{ticket.number}还没有人接单，请先回复「接单 {ticket.number}」。"
    if not _may_act(session, ticket, userid):
        return f"工单{ticket.number}由{staff_name(session, ticket.assignee)}负责（首问负责制），请联系负责人或主管。"
    if ticket.state not in states:
        return f"工单{ticket.number}当前状态为「{STATE_LABELS.get(ticket.state, ticket.state)}」。"
    return None


def on_the_way(session: Session, ticket_id: int, userid: str, now: datetime) -> Result:
    ticket = get_ticket(session, ticket_id)
    err = _check(session, ticket, userid, ("accepted", "reopened"))
    if err:
        return Result(False, err)
    ticket.state = "on_the_way"
    fire(session, ticket, "on_the_way", userid, now)
    name = staff_name(session, userid)
    return Result(True, f"已通知业主您正在赶往（{ticket.number}）。",
                  owner_push(session, ticket, f"您的工单{ticket.number}：{name}正在赶往现场。", "on_the_way"))


def on_site(session: Session, ticket_id: int, userid: str, now: datetime, response_code: str | None = None) -> Result:
    ticket = get_ticket(session, ticket_id)
    err = _check(session, ticket, userid, ("accepted", "on_the_way", "reopened"))
    if err:
        return Result(False, err)
    ticket.state, ticket.on_site_at = "on_site", now
    fire(session, ticket, "on_site", userid, now)
    name = staff_name(session, userid)
    pushes = owner_push(session, ticket, f"您的工单{ticket.number}：{name}已到达现场处理。", "on_site")
    if response_code:  # the card's buttons are spent; a fresh one keeps 完成 at hand
        pushes += update_card_push(ticket, [userid], response_code, "已到场")
        pushes.append(work_card(session, ticket, userid, f"工单{ticket.number} 处理中"))
    return Result(True, f"已记录到场（{ticket.number}）。", pushes)


def progress(session: Session, ticket_id: int, userid: str, now: datetime, note: str) -> Result:
    ticket = get_ticket(session, ticket_id)
    err = _check(session, ticket, userid, ("accepted", "on_the_way", "on_site", "reopened"))
    if err:
        return Result(False, err)
    if not note:
        return Result(False, f"请写明进展，例如「进度 {ticket.number} 已联系供应商，明天上午更换配件」。")
    n = session.query(TicketEvent).filter(TicketEvent.ticket_id == ticket.id, TicketEvent.action == "progress").count()
    fire(session, ticket, "progress", userid, now, note=note)
    return Result(True, f"进展已记录并告知业主（{ticket.number}）。",
                  owner_push(session, ticket, f"您的工单{ticket.number}有新进展：{note}", f"progress:{n + 1}"))


def complete(session: Session, ticket_id: int, userid: str, now: datetime, note: str = "",
             response_code: str | None = None, task_id: str | None = None) -> Result:
    """Done: the result goes to the owner at once with the survey (O9), and a home
    repair starts the call-back clock (O11)."""
    ticket = get_ticket(session, ticket_id)
    err = _check(session, ticket, userid, ("accepted", "on_the_way", "on_site", "reopened"))
    if err:
        return Result(False, err)
    name = staff_name(session, userid)
    ticket.state, ticket.completed_at = "completed", now
    ticket.result_note = note or ticket.result_note or "已处理完毕"
    if ticket.on_site_at is None:
        ticket.on_site_at = now
    fire(session, ticket, "completed", userid, now, note=ticket.result_note)
    pushes = update_card_push(ticket, [userid], response_code, "已完成")
    pushes += close_cards(session, ticket, "已完成", skip_task=task_id)
    if home_repair(ticket):
        cb = roster().callback_for(ticket.building)
        ticket.version += 1
        pushes.append(card_push(session, ticket, [cb], f"{ticket.number}v{ticket.version}",
                                f"请回访{ticket.number}（家庭维修）", [("已回访", "callback", 1)],
                                desc=f"维修完成，请在一个工作日内电话回访 · 处理人{name}"))
    pushes += report_result(session, ticket, now)
    return Result(True, f"工单{ticket.number}已完成，结果和满意度调查已发给业主。", pushes)


def report_result(session: Session, ticket: Ticket, now: datetime) -> list[Push]:
    """O9: the result and the survey question to the owner; records result_sent."""
    openid = owner_openid(session, ticket)
    if not openid:  # nobody to message: the result clock keeps running until a call-back
        return []
    text = (f"您的工单{ticket.number}已处理完成：{ticket.result_note}\n"
            f"请为本次服务打分：回复 1-5 分（5 分最满意），或回复「满意」「一般」「不满意」，可附上意见"
            f"（也可回复「评价 {ticket.number} 5」）。")
    pushes = owner_push(session, ticket, text, f"result:{ticket.reopen_count}")
    ticket.result_sent_at = now
    fire(session, ticket, "result_sent", "bot", now)
    open_survey(session, ticket, openid, now)
    return pushes


def open_survey(session: Session, ticket: Ticket, openid: str, now: datetime) -> bool:
    """Waits for the owner's answer in the chat. An exchange the owner is in the
    middle of (a booking, say) is not cut off: the owner then answers with
    「评价 T12 5」, which always works."""
    current = conversation.get(session, openid, "private", now)
    if current is not None and current.handler not in (SURVEY_CONV,):
        record(session, ticket, "bot", "survey_deferred", now, busy_with=current.handler)
        return False
    conversation.start(session, openid, "private", SURVEY_CONV, {"ticket": ticket.id}, now,
                       ttl=timedelta(hours=policy().survey_ttl_hours))
    return True


def called_back(session: Session, ticket_id: int, userid: str, now: datetime, note: str = "",
                response_code: str | None = None, task_id: str | None = None) -> Result:
    ticket = get_ticket(session, ticket_id)
    if ticket is None:
        return Result(False, "没有找到这个工单。")
    if ticket.completed_at is None:
        return Result(False, f"工单{ticket.number}尚未完成，完成后再回访。")
    ticket.called_back_at = now
    fire(session, ticket, "called_back", userid, now, note=note)
    pushes = update_card_push(ticket, [userid], response_code, "已回访")
    pushes += close_cards(session, ticket, "已回访", skip_task=task_id, callback=True)
    if ticket.result_sent_at is None:  # the call-back reported the result too (O9)
        ticket.result_sent_at = now
        fire(session, ticket, "result_sent", userid, now, by="call-back")
    return Result(True, f"回访已记录（{ticket.number}）。", pushes)


def transfer(session: Session, ticket_id: int, userid: str, now: datetime, to: str | None = None,
             response_code: str | None = None) -> Result:
    """转派: to a named colleague, or (button) to the next person on duty."""
    ticket = get_ticket(session, ticket_id)
    if ticket is None:
        return Result(False, "没有找到这个工单。")
    if ticket.state in ("closed", "completed", "waiting_home"):
        return Result(False, f"工单{ticket.number}当前状态为「{STATE_LABELS.get(ticket.state)}」，不能转派。")
    if ticket.assignee is None:  # declining an open card: the next on duty gets it
        if to is None:
            pushes = redispatch(session, ticket, now, actor=userid, exclude=userid)
            if pushes is None:
                return Result(False, "值班人员都已通知，请联系主管。")
            pushes = update_card_push(ticket, [userid], response_code, "已转派") + pushes
            return Result(True, f"已转给下一位值班同事（{ticket.number}）。", pushes)
    elif not _may_act(session, ticket, userid):
        return Result(False, f"工单{ticket.number}由{staff_name(session, ticket.assignee)}负责，只有负责人或主管可以转派。")
    if to is None:
        on_duty = roster().on_duty(ticket.team, ticket.building)
        to = next((u for u in on_duty if u != userid and u != ticket.assignee), None)
        if to is None:
            return Result(False, "没有可转派的值班同事，请用「转派 T编号 姓名」指定。")
        target = session.scalar(select(Staff).where(Staff.userid == to))
    else:
        target = find_staff_by_name(session, to)
    if target is None:
        return Result(False, f"没有找到同事「{to}」。")
    prev = ticket.assignee
    ticket.assignee = target.userid
    if ticket.state == "open":
        ticket.state, ticket.accepted_at = "accepted", now
        fire(session, ticket, "accepted", userid, now, by=staff_name(session, userid), assigned_to=target.userid)
    record(session, ticket, userid, "transferred", now, frm=prev, to=target.userid)
    pushes = update_card_push(ticket, [userid], response_code, f"已转派{target.name}")
    pushes += close_cards(session, ticket, f"已转派{target.name}")
    pushes.append(work_card(session, ticket, target.userid, f"{staff_name(session, userid)}转派工单{ticket.number}给您"))
    pushes += owner_push(session, ticket, f"您的工单{ticket.number}已转交{target.name}跟进。",
                         f"transfer:{ticket.version}")
    return Result(True, f"工单{ticket.number}已转派给{target.name}。", pushes)


def take_over(session: Session, ticket_id: int, userid: str, now: datetime, response_code: str | None = None) -> Result:
    """A supervisor or manager takes an escalated ticket."""
    ticket = get_ticket(session, ticket_id)
    if ticket is None:
        return Result(False, "没有找到这个工单。")
    if not is_manager(session, userid):
        return Result(False, "只有主管或经理可以接管工单。")
    if ticket.state == "open":
        res = accept(session, ticket_id, userid, now, response_code)
        if res.ok:
            record(session, ticket, userid, "taken_over", now)
        return res
    if ticket.state in ("closed", "completed"):
        return Result(False, f"工单{ticket.number}已{STATE_LABELS[ticket.state]}。",
                      update_card_push(ticket, [userid], response_code, STATE_LABELS[ticket.state]))
    prev, ticket.assignee = ticket.assignee, userid
    record(session, ticket, userid, "taken_over", now, frm=prev)
    pushes = update_card_push(ticket, [userid], response_code, "已接管")
    pushes += close_cards(session, ticket, f"{staff_name(session, userid)}已接管")
    pushes.append(work_card(session, ticket, userid, f"您已接管工单{ticket.number}"))
    if prev and prev != userid:
        pushes.append(staff_text(prev, f"工单{ticket.number}已由{staff_name(session, userid)}接管。", None, ticket))
    return Result(True, f"您已接管工单{ticket.number}。", pushes)


# ---------------------------------------------------------------- listing

def describe(session: Session, ticket: Ticket, with_holder: bool = True) -> str:
    line = (f"{ticket.number}【{class_label(ticket.priority)}】{ticket.content[:20]} — "
            f"{STATE_LABELS.get(ticket.state, ticket.state)}")
    if with_holder and ticket.assignee:
        line += f"（{staff_name(session, ticket.assignee)}）"
    return line


def recipient_of_holder(session: Session, ticket: Ticket, holder: str) -> list[str]:
    r = roster()
    if holder == "supervisor":
        return [ticket.assignee or r.escalation["supervisor"]]
    if holder == "callback":
        return [r.callback_for(ticket.building)]
    if ticket.assignee:
        return [ticket.assignee]
    return list(ticket.notified or []) or r.on_duty(ticket.team, ticket.building)[:1]
