"""The consultation inbox: every handoff to a person is a case.

A case keeps the owner's own words, the recent conversation before it, who
picked it up, the O1 first-response clock (RULES.md O1, minutes from
handlers/data/member_clocks.yaml) and every reply. Staff answer from the
console, the JSON API or WeCom (`回复 C12 ...`, or 「我来回复」 on the card and
then a plain message); the answer reaches the owner as a customer-service
text inside the 48 h window and as a template notice outside it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ground import rules
from ground.limits import in_cs_window
from handlers import clocks, privacy, scope
from handlers.membership.notify import (clock_config, dedicated_agent, promise as clock_promise, recipients,
                                        service_policies, team_members)
from handlers.message import Message, Push
from store.models import AuditLog, Consultation, ConsultationEntry, InboxMessage, Owner, ServiceClock, Staff

CONFIG_FILE = Path(__file__).resolve().parent / "data" / "consultations.yaml"
OPEN_STATES = ("waiting", "answered")
STATE_LABELS = {"waiting": "等待回复", "answered": "已回复", "closed": "已关闭"}


@dataclass(frozen=True)
class Config:
    recent_turns: int
    title_chars: int
    template_id: str | None
    template_first: str
    template_remark: str
    ask_only: tuple[str, ...]


_WORDS = rules.ListOf(rules.Text())
SCHEMA = rules.Record(
    recent_turns=rules.Int(min=0), title_chars=rules.Int(min=0),
    reply_template=rules.Opt(rules.Record(id=rules.Opt(rules.Text()), first=rules.Opt(rules.Text(), "您的咨询有了回复"),
                                          remark=rules.Opt(rules.Text(empty=True), "")), {}),
    ask_only=rules.Opt(_WORDS, []),
)


def _build(data: dict, src: rules.Source) -> Config:
    tpl = data["reply_template"]
    return Config(data["recent_turns"], data["title_chars"], tpl["id"], tpl["first"], tpl["remark"],
                  tuple(data["ask_only"]))


CONFIG = rules.RuleFile(CONFIG_FILE, schema=SCHEMA, build=_build)


def config(path: Path = CONFIG_FILE) -> Config:
    return CONFIG.get(path)


def template_id() -> str | None:
    return os.environ.get("GUANJIA_CONSULT_TEMPLATE_ID") or config().template_id


def o1_minutes() -> int:
    return int(service_policies()["O1"].minutes)


def promise() -> str:
    """「10分钟内」 from O1's data (never written into a reply by hand)."""
    return clock_promise("O1")


def public_url() -> str:
    return (os.environ.get("GUANJIA_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")


@dataclass
class Result:
    ok: bool
    message: str
    pushes: list[Push] = field(default_factory=list)
    case: Consultation | None = None


# --- look-ups -----------------------------------------------------------------------------

# Asked when the bot is unsure what an owner meant (dispatch's "__routed__" hook): built once.
_OPEN_CASE = (select(Consultation).where(Consultation.sender == bindparam("sender"),
                                         Consultation.state.in_(OPEN_STATES))
              .order_by(Consultation.id.desc()).limit(1))


def open_case(session: Session, sender: str) -> Consultation | None:
    return session.scalar(_OPEN_CASE, {"sender": sender})


def get_case(session: Session, case_id: int) -> Consultation | None:
    return session.get(Consultation, case_id)


def entries(session: Session, case: Consultation) -> list[ConsultationEntry]:
    return list(session.scalars(select(ConsultationEntry).where(ConsultationEntry.consultation_id == case.id)
                                .order_by(ConsultationEntry.at, ConsultationEntry.id)))


def clock_of(session: Session, case: Consultation) -> ServiceClock | None:
    return session.scalar(select(ServiceClock).where(ServiceClock.subject == _subject(case),
                                                     ServiceClock.clock == "O1"))


def owner_of(session: Session, case: Consultation) -> Owner | None:
    return session.get(Owner, case.owner_id) if case.owner_id else None


def staff_name(session: Session, userid: str | None) -> str:
    if not userid:
        return ""
    st = session.scalar(select(Staff).where(Staff.userid == userid))
    return st.name if st else userid


def parse_number(text: str) -> int | None:
    t = (text or "").strip().upper().lstrip("C")
    return int(t) if t.isdigit() else None


def _subject(case: Consultation) -> str:
    return f"consultation:{case.id}:{case.round}"


# --- the owner's side -------------------------------------------------------------------------

def _asks_only(text: str) -> bool:
    core = (text or "").strip().strip("。！!？?～~ ")
    return not core or core in config().ask_only


def _recent(session: Session, msg: Message, now: datetime) -> list[tuple[datetime, str, str]]:
    """The owner's last turns before this message (from the inbox), oldest first:
    (time, "owner"/"bot", text)."""
    n = config().recent_turns
    if not n:
        return []
    rows = session.scalars(select(InboxMessage).where(InboxMessage.sender == msg.sender,
                                                      InboxMessage.channel == msg.channel,
                                                      InboxMessage.created_at >= now - timedelta(hours=24))
                           .order_by(InboxMessage.id.desc()).limit(n + 1))
    turns: list[tuple[datetime, str, str]] = []
    for row in rows:
        p = row.payload or {}
        if msg.msg_id and p.get("msg_id") == msg.msg_id:
            continue  # this very message
        if p.get("kind") != "text" or not p.get("text"):
            continue
        for reply in reversed(row.replies or []):
            turns.append((row.created_at, "bot", str(reply)))
        turns.append((row.created_at, "owner", str(p["text"])))
    return list(reversed(turns))[-n:]


def _title(question: str, context: list[tuple[datetime, str, str]]) -> str:
    """What the owner asked: their words, or (when they only asked for a person)
    the last thing they asked before."""
    limit = config().title_chars
    if _asks_only(question):
        # Greetings and one-word turns ("你好", "B1") say nothing about the matter.
        asked = [t for _, who, t in context if who == "owner" and not _asks_only(t) and len(t.strip()) >= 5]
        return (asked[-1][:limit] + "（要求人工）") if asked else "业主要求人工服务"
    return question.strip()[:limit]


def _add(session: Session, case: Consultation, kind: str, author: str, text: str, at: datetime, **detail) -> None:
    session.add(ConsultationEntry(consultation_id=case.id, at=at, author_kind=kind, author=author,
                                  text=text[:4000], detail=detail))


def handoff(session: Session, msg: Message, owner: Owner | None, now: datetime,
            topic: str = "人工咨询") -> tuple[str, list[Push]]:
    """The bot hands the owner's message to a person. An owner who already has an
    open case adds to it (and its holder is told); otherwise a new case starts,
    with O1 running and a card to the owner's agent or customer service."""
    text = (msg.text or "").strip()
    case = open_case(session, msg.sender)
    if case is not None:
        return _add_question(session, case, text, msg.sender, now)
    context = _recent(session, msg, now)
    team = clock_config().get("review_team", "customer_service")
    agent = dedicated_agent(session, owner) if owner else None
    to = agent.userid if agent else recipients(team_members(session, team))
    case = Consultation(owner_id=owner.id if owner else None, sender=msg.sender, channel=msg.channel,
                        state="waiting", title=_title(text, context), question=text[:2000], topic=topic,
                        recipients=to or None, round=1, last_owner_at=now, created_at=now)
    session.add(case)
    session.flush()
    for at, who, line in context:
        _add(session, case, who, msg.sender if who == "owner" else "bot", line, at, context=True)
    _add(session, case, "owner", msg.sender, text, now)
    _start_o1(session, case, owner, team, now)
    session.add(AuditLog(actor="bot", action="consultation.opened", target=case.number,
                         detail={"to": to, "topic": topic}))
    pushes = [card(session, case, owner)] if to else []
    who = f"您的专属客服{agent.name}" if agent else "客服"
    return f"已为您转接人工，{who}会在{promise()}回复您（咨询编号{case.number}）。", pushes


def _start_o1(session: Session, case: Consultation, owner: Owner | None, team: str, now: datetime) -> None:
    clocks.start(session, "service", _subject(case), "O1", now, owner_id=case.owner_id, team=team,
                assignee=case.holder or case.recipients,
                detail={"title": f"咨询{case.number}：{case.title}", "consultation": case.id})


def _add_question(session: Session, case: Consultation, text: str, sender: str, now: datetime
                  ) -> tuple[str, list[Push]]:
    _add(session, case, "owner", sender, text, now)
    case.last_owner_at = now
    reopened = case.state == "answered"
    if reopened:  # a new question after an answer: a person owes a first response again
        case.state, case.round = "waiting", case.round + 1
        _start_o1(session, case, owner_of(session, case), clock_config().get("review_team", "customer_service"), now)
    session.flush()
    owner = owner_of(session, case)
    who = f"{owner.name}（{owner.room or ''}）" if owner else "业主"
    to = case.holder or case.recipients
    pushes = []
    if to:
        pushes.append(Push(channel="wecom", recipient=to, kind="text", payload={"content": (
            f"咨询{case.number}有新消息，{who}：{privacy.excerpt(text, 300)}\n回复业主：回复 {case.number} 内容"
            f"\n查看：{public_url()}/console/consultations/{case.id}")},
            dedup_key=f"consult:{case.id}:q:{int(now.timestamp() * 1000)}", priority=2, source=f"consultation:{case.id}"))
    holder = staff_name(session, case.holder) if case.holder else "客服"
    return f"已把您的补充转给{holder}（咨询编号{case.number}），会在{promise()}回复您。", pushes


def card(session: Session, case: Consultation, owner: Owner | None) -> Push:
    """The staff task: titled with what the owner asked, the clock's promise,
    the recent conversation, a button to pick it up and a link to answer."""
    # Owners' words reach staff with numbers masked (handlers/privacy.py), a neighbour's too.
    lines = [f"{'业主' if e.author_kind == 'owner' else '管家'}：{privacy.mask_text(e.text)}"
             for e in entries(session, case)][-4:]
    card_body = {
        "card_type": "button_interaction",
        "source": {"desc": "管家·业主咨询"},
        "main_title": {"title": f"咨询{case.number}：{privacy.mask_text(case.title)}"[:36],
                       "desc": f"{promise()}首次回复（{case.topic}）"[:44]},
        "sub_title_text": "\n".join(lines)[:160],
        "horizontal_content_list": [{"keyname": k, "value": str(v)[:30]} for k, v in (
            ("业主", owner.name if owner else "未绑定"), ("房号", (owner.room if owner else None) or "-"),
            ("等级", owner.tier if owner else "-"), ("电话", privacy.mask_text(owner.phone if owner else None) or "-"))],
        "jump_list": [{"type": 1, "title": "在管理台查看并回复", "url": f"{public_url()}/console/consultations/{case.id}"}],
        "task_id": f"consult-{case.id}-{case.round}",
        "button_list": [{"text": "我来回复", "style": 1, "key": f"consult:take:{case.id}"},
                        {"text": "关闭咨询", "style": 2, "key": f"consult:close:{case.id}"}],
    }
    return Push(channel="wecom", recipient=case.recipients or "", kind="template_card", payload={"card": card_body},
                dedup_key=f"consult:{case.id}:card:{case.round}", priority=2, source=f"consultation:{case.id}")


# --- the staff side -------------------------------------------------------------------------

def _owner_push(session: Session, case: Consultation, text: str, now: datetime, key: str,
                template: bool = True) -> tuple[Push | None, str]:
    """(push, "text"/"template"): a customer-service text inside the 48 h window,
    the reply template outside it."""
    owner = owner_of(session, case)
    last = owner.last_inbound_at if owner else case.last_owner_at
    in_window = in_cs_window(last, now)
    common = dict(dedup_key=f"consult:{case.id}:owner:{key}", priority=2, source=f"consultation:{case.id}")
    tid = template_id()
    if template and tid and not in_window:
        cfg = config()
        return Push(channel="mp", recipient=case.sender, kind="template", payload={
            "template_id": tid,
            "data": {"first": {"value": cfg.template_first}, "keyword1": {"value": case.title[:20]},
                     "keyword2": {"value": text[:200]}, "remark": {"value": cfg.template_remark}}}, **common), "template"
    return Push(channel="mp", recipient=case.sender, kind="text", payload={"content": text}, **common), "text"


def _desk(actor: str) -> bool:
    """A console or API user with no staff record ("console:lin", "api:ops"):
    may answer any case (a manager stepping in) without becoming its holder."""
    return actor.startswith(("console:", "api:"))


def _lead(session: Session, userid: str) -> bool:
    """Supervisors and managers may step into a case someone else holds."""
    st = session.scalar(select(Staff).where(Staff.userid == userid, Staff.active.is_(True)))
    return st is not None and st.role in ("supervisor", "manager")


def _may_answer(session: Session, case: Consultation | None, userid: str, via: str = "wecom") -> str | None:
    if case is None:
        return "没有找到这条咨询。"
    st = session.scalar(select(Staff).where(Staff.userid == userid, Staff.active.is_(True)))
    if st is None and not _desk(userid):
        return "只有工作人员可以处理咨询。"
    if via == "wecom" and st is not None:
        # The building scope (handlers/scope.py); the console and the API check their sign-in's.
        if not scope.can_see_consultation(session, scope.for_staff(session, st), case):
            return "没有找到这条咨询。"  # outside one's scope reads as missing
    return None


def _case_to_answer(session: Session, case_id: int, userid: str, via: str) -> tuple[Consultation, Result | None]:
    """The case `userid` acts on, and the refusal to give instead when they may not."""
    case = get_case(session, case_id)
    why = _may_answer(session, case, userid, via)
    return case, (Result(False, why) if why else None)


def _stop_o1(session: Session, case: Consultation, now: datetime, by: str) -> None:
    """A person answered or closed the case: its O1 clock (the first response) stops."""
    row = clock_of(session, case)
    if row is not None:
        clocks.stop_named(session, row.subject, "O1", now, by=by)


def pick_up(session: Session, case_id: int, userid: str, now: datetime, via: str = "wecom") -> Result:
    """First come owns it: the picker becomes the holder and the owner hears a
    person has it (a first response, so O1 stops)."""
    case, refused = _case_to_answer(session, case_id, userid, via)
    if refused:
        return refused
    if case.state == "closed":
        return Result(False, f"咨询{case.number}已关闭。", case=case)
    if case.holder and case.holder != userid:
        return Result(False, f"咨询{case.number}已由{staff_name(session, case.holder)}负责。", case=case)
    pushes: list[Push] = []
    if case.holder != userid:
        case.holder, case.picked_at = userid, now
        _add(session, case, "system", userid, f"{staff_name(session, userid)}接手", now, action="picked_up", via=via)
        session.add(AuditLog(actor=userid, action="consultation.picked_up", target=case.number, detail={"via": via}))
        row = clock_of(session, case)
        if row is not None and row.state in clocks.ACTIVE_STATES:
            push, _ = _owner_push(session, case, f"您好，{staff_name(session, userid)}已接手您的咨询"
                                                 f"（{case.number}），正在为您处理，请稍候。", now, f"picked:{case.round}",
                                  template=False)
            if push:
                pushes.append(push)
            clocks.stop_named(session, row.subject, "O1", now, by=userid)
    session.flush()
    return Result(True, f"咨询{case.number}由您负责。直接发送回复内容即可转给业主（或「回复 {case.number} 内容」）。",
                  pushes, case)


def reply(session: Session, case_id: int, userid: str, text: str, now: datetime, via: str = "wecom") -> Result:
    """A staff answer to the owner, exactly as typed (full-width punctuation included)."""
    case, refused = _case_to_answer(session, case_id, userid, via)
    if refused:
        return refused
    text = (text or "").strip()
    if not text:
        return Result(False, "回复内容不能为空。", case=case)
    if case.state == "closed":
        return Result(False, f"咨询{case.number}已关闭，如需联系业主请新开咨询。", case=case)
    if case.holder and case.holder != userid and not _desk(userid) and not _lead(session, userid):
        return Result(False, f"咨询{case.number}由{staff_name(session, case.holder)}负责（首问负责），请联系其处理。",
                      case=case)
    if not case.holder and not _desk(userid):
        case.holder, case.picked_at = userid, now
    n = len([e for e in entries(session, case) if e.author_kind == "staff"]) + 1
    push, delivery = _owner_push(session, case, text, now, f"reply:{n}")
    _add(session, case, "staff", userid, text, now, via=via, delivery=delivery)
    case.state, case.last_reply_at = "answered", now
    _stop_o1(session, case, now, userid)
    session.add(AuditLog(actor=userid, action="consultation.replied", target=case.number,
                         detail={"via": via, "delivery": delivery}))
    session.flush()
    how = "客服消息" if delivery == "text" else "模板消息（超过48小时未互动）"
    return Result(True, f"已回复业主（咨询{case.number}，{how}）。", [push] if push else [], case)


def close(session: Session, case_id: int, userid: str, now: datetime, via: str = "wecom", note: str = "") -> Result:
    case, refused = _case_to_answer(session, case_id, userid, via)
    if refused:
        return refused
    if case.state == "closed":
        return Result(True, f"咨询{case.number}已关闭。", case=case)
    case.state, case.closed_at, case.closed_by = "closed", now, userid
    _stop_o1(session, case, now, userid)
    _add(session, case, "system", userid, f"{staff_name(session, userid) or userid}关闭咨询" + (f"：{note}" if note else ""),
         now, action="closed", via=via)
    session.add(AuditLog(actor=userid, action="consultation.closed", target=case.number, detail={"via": via, "note": note}))
    session.flush()
    return Result(True, f"咨询{case.number}已关闭。", case=case)


def waiting_for(session: Session, userid: str) -> list[Consultation]:
    """Open cases this staff member holds, or was sent and nobody holds yet."""
    rows = session.scalars(select(Consultation).where(Consultation.state.in_(OPEN_STATES))
                           .order_by(Consultation.id)).all()
    return [c for c in rows if c.holder == userid or (not c.holder and userid in (c.recipients or "").split("|"))]


# --- how a case reads on screen (console, API) ------------------------------------------------

def _minutes(td: timedelta) -> str:
    m = max(0, int(td.total_seconds() // 60))
    return f"{m // 60}小时{m % 60}分钟" if m >= 60 else f"{m}分钟"


def clock_chip(row: ServiceClock | None, now: datetime) -> tuple[str, str] | None:
    """(words, colour) for the O1 clock, in the manager's language: 「首次回复 剩余6分钟」."""
    if row is None:
        return None
    if row.state in clocks.ACTIVE_STATES:
        left = row.due_at - now
        if left.total_seconds() <= 0:
            return f"首次回复 超时{_minutes(-left)}", "red"
        total = (row.due_at - row.started_at).total_seconds() or 1
        # Amber well before the breach: the last third (and never green with a minute left).
        colour = "amber" if left.total_seconds() <= max(total / 3, 120) else "green"
        return f"首次回复 剩余{_minutes(left)}", colour
    if row.state == "met":
        return "首次回复 按时", "grey"
    if row.state == "breached_met":
        return f"首次回复 超时{_minutes(row.stopped_at - row.due_at)}后回复", "red"
    return "首次回复 已取消", "grey"


def as_dict(session: Session, case: Consultation, now: datetime, with_entries: bool = True) -> dict:
    owner = owner_of(session, case)
    row = clock_of(session, case)
    chip = clock_chip(row, now)
    d = {"id": case.id, "number": case.number, "state": case.state, "state_label": STATE_LABELS[case.state],
         "title": case.title, "question": case.question, "topic": case.topic,
         "owner": {"id": owner.id, "name": owner.name, "room": owner.room, "tier": owner.tier} if owner else None,
         "holder": case.holder, "holder_name": staff_name(session, case.holder) or None,
         "created_at": case.created_at.isoformat(), "picked_at": case.picked_at.isoformat() if case.picked_at else None,
         "last_reply_at": case.last_reply_at.isoformat() if case.last_reply_at else None,
         "closed_at": case.closed_at.isoformat() if case.closed_at else None,
         "first_response": {"due_at": row.due_at.isoformat(), "state": row.state, "text": chip[0] if chip else None,
                            "minutes": o1_minutes()} if row else None}
    if with_entries:
        d["entries"] = [{"at": e.at.isoformat(), "who": e.author_kind, "author": e.author,
                         "name": staff_name(session, e.author) if e.author_kind in ("staff", "system") else None,
                         "text": e.text, "context": bool((e.detail or {}).get("context")),
                         "delivery": (e.detail or {}).get("delivery")} for e in entries(session, case)]
    return d


def listing(session: Session, state: str = "open", limit: int = 100, viewer=None) -> list[Consultation]:
    """`viewer` (handlers/scope.py): only the cases they may see."""
    q = select(Consultation) if viewer is None else scope.consultations(select(Consultation), viewer)
    if state == "open":
        q = q.where(Consultation.state.in_(OPEN_STATES))
    elif state in STATE_LABELS:
        q = q.where(Consultation.state == state)
    # Waiting ones first (a person owes an answer), oldest wait first.
    rows = list(session.scalars(q.order_by(Consultation.id.desc()).limit(limit)))
    return sorted(rows, key=lambda c: (c.state != "waiting", c.state == "closed", c.last_owner_at or c.created_at))
