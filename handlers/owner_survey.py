"""O17: the periodic owner satisfaction survey, answered in the chat.

When the survey goes out, each owner gets a short exchange ("survey") opened
in `conversations` (never replacing one already in progress, such as a
booking). A reply that starts with a score 1-5 is recorded (one answer per
owner and period, a later one replaces it); anything else is let go to the
normal routing, so the survey never gets in the owner's way.
Results are aggregated per period, building and tier by `report()`.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from handlers import conversation
from handlers.capability import Capability
from handlers.message import Context, Message, Outcome, Push
from handlers.schedule.config import get_schedule
from handlers.schedule.timing import local
from store.models import Conversation, Owner, SurveyAnswer

capability = Capability("survey")  # O17: the owners' answers in the chat

HANDLER = "survey"
# A score alone, or followed by 分, punctuation or a space and a comment: "5", "4分",
# "2分，电梯太慢", "5 服务很好". Not "3号楼电梯坏了" or "5月3日..." (a message, not an answer).
SCORE = re.compile(r"^\s*(10|[1-9])(?:\s*分)?(?:\s*$|\s*[，,。.、:：!！;；]\s*|\s+)(.*)$", re.S)


def open_survey(session: Session, period: str, now: datetime) -> int:
    """Open the answering exchange for every owner reachable on the OA; returns how many."""
    days = int(get_schedule().rules.get("survey", {}).get("reply_days", 14))
    busy = set(session.scalars(select(Conversation.sender).where(Conversation.chat == "private",
                                                                   Conversation.expires_at > now)))
    rows = [{"sender": o, "chat": "private", "handler": HANDLER, "state": {"period": period, "survey": "satisfaction"},
             "expires_at": now + timedelta(days=days)}
            for o in session.scalars(select(Owner.openid).where(Owner.openid.is_not(None))) if o not in busy]
    # Expired exchanges of those owners would block the insert (unique sender+chat).
    session.query(Conversation).filter(Conversation.chat == "private", Conversation.expires_at <= now,
                                       Conversation.sender.in_([r["sender"] for r in rows])).delete(
        synchronize_session=False)
    if rows:
        session.execute(Conversation.__table__.insert(), rows)
    return len(rows)


def record_answer(session: Session, owner: Owner, period: str, score: int, comment: str | None,
                  now: datetime, survey: str = "satisfaction") -> SurveyAnswer:
    row = session.scalar(select(SurveyAnswer).where(SurveyAnswer.survey == survey, SurveyAnswer.period == period,
                                                    SurveyAnswer.owner_id == owner.id))
    building = owner.home.building.code if owner.home and owner.home.building else None
    if row is None:
        row = SurveyAnswer(survey=survey, period=period, owner_id=owner.id, score=score, created_at=now)
        session.add(row)
    row.score, row.comment, row.building_code, row.tier = score, comment or None, building, owner.tier
    row.answered_on = local(now).date()
    session.flush()
    return row


@capability.conversation(HANDLER)
def handle_survey(ctx: Context, msg: Message, conv) -> Outcome | None:
    m = SCORE.match(msg.text or "")
    lo, hi = get_schedule().rules.get("survey", {}).get("scale", [1, 5])
    if not m:
        return None  # not an answer: normal routing takes the message, the survey stays open
    score = int(m.group(1))
    if not lo <= score <= hi:
        return Outcome(replies=[get_schedule().texts["survey_retry"]], intent="survey")
    owner = ctx.session.scalar(select(Owner).where(Owner.openid == msg.sender))
    if owner is None:
        conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
        return None
    period = conv.state.get("period")
    comment = m.group(2).strip()
    record_answer(ctx.session, owner, period, score, comment, ctx.now, conv.state.get("survey", "satisfaction"))
    conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
    out = Outcome(replies=[get_schedule().text("survey_thanks", score=score)], intent="survey")
    rules = get_schedule().rules.get("survey", {})
    if score <= int(rules.get("low_score", 2)):
        # A dissatisfied owner is followed up by a person (001 三.3): tell their building's agent.
        agent = _agent_for(ctx.session, owner)
        from handlers.privacy import mask_text  # the owner's words reach staff with numbers masked

        if agent:
            out.pushes.append(Push(channel="wecom", recipient=agent, kind="text", dedup_key=f"O17:low:{period}:{owner.id}",
                                   payload={"content": get_schedule().text(
                                       "survey_low", period=period, room=owner.room or "", name=owner.name,
                                       score=score, comment=mask_text(comment) or "（无）")}, priority=4, source=f"O17:owner:{owner.id}"))
    return out


def _agent_for(session: Session, owner: Owner) -> str | None:
    from store.models import Group, Staff

    if owner.home is not None:
        g = session.scalar(select(Group).where(Group.kind == "building", Group.building_id == owner.home.building_id))
        if g is not None and g.staff_admin is not None:
            return g.staff_admin.userid
    return session.scalar(select(Staff.userid).where(Staff.team == "customer_service", Staff.active.is_(True))
                          .order_by(Staff.id).limit(1))


def report(session: Session, period: str, survey: str = "satisfaction") -> dict:
    """Answers, average and low scores (<= 2, to follow up) per building and tier."""
    def agg(col):
        out = {}
        for key, n, avg, low in session.execute(
                select(col, func.count(), func.avg(SurveyAnswer.score),
                       func.sum(case((SurveyAnswer.score <= 2, 1), else_=0)))
                .where(SurveyAnswer.survey == survey, SurveyAnswer.period == period).group_by(col)).all():
            out[key or "-"] = {"answers": n, "average": round(float(avg), 2), "low": int(low or 0)}
        return out

    total = session.execute(select(func.count(), func.avg(SurveyAnswer.score)).where(
        SurveyAnswer.survey == survey, SurveyAnswer.period == period)).one()
    owners = session.scalar(select(func.count()).select_from(Owner).where(Owner.openid.is_not(None))) or 0
    return {"survey": survey, "period": period, "answers": total[0],
            "average": round(float(total[1]), 2) if total[1] is not None else None,
            "response_rate": round(total[0] / owners, 3) if owners else None,
            "by_building": agg(SurveyAnswer.building_code), "by_tier": agg(SurveyAnswer.tier)}
