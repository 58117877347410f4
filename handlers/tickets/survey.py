"""Satisfaction survey in the owner's chat (O9): 1-5 or 满意/一般/不满意 plus an
optional comment. A low score reopens the ticket to the supervisor, who follows
up until the owner is satisfied (the follow-up clock runs meanwhile)."""
from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.orm import Session

from handlers import conversation
from handlers.identity import find_owner
from handlers.message import Context, Message, Outcome
from handlers.tickets import core
from handlers.tickets.capability import capability
from handlers.tickets.policy import policy, roster
from store.models import Ticket

# The answering exchange is opened by core.report_result (core.open_survey), with the result.
SURVEY_CONV = core.SURVEY_CONV
# "5", "5分 很好", "4，还行": a digit alone or followed by 分/星 or a separator, so that
# "5楼又漏水了" is not read as a score.
_SCORE = re.compile(r"^\s*([1-5])\s*(?:(?:分|星)[\s,，。.!！:：、]*|[\s,，。.!！:：、]+|$)(.*)$", re.S)


def parse_answer(text: str) -> tuple[int, str] | None:
    """(score, comment) or None when the text is not an answer."""
    text = (text or "").strip()
    if re.search(r"[?？吗么]$|什么|怎么", text):  # "满意度调查是什么？" asks, it does not rate
        return None
    m = _SCORE.match(text)
    if m:
        return int(m.group(1)), m.group(2).strip()
    # Longest word first: "不满意" must not read as "满意".
    for word in sorted(policy().survey_words, key=len, reverse=True):
        if text.startswith(word):
            return policy().survey_words[word], text[len(word):].strip(" ,，。.!！:：")
    return None


def answer(session: Session, ticket: Ticket, owner_sender: str, score: int, comment: str,
           now: datetime) -> Outcome:
    ticket.survey_score, ticket.survey_comment = score, comment or None
    core.record(session, ticket, owner_sender, "survey", now, score=score, comment=comment,
                round=ticket.reopen_count)
    if score > policy().survey_reopen_at_or_below:
        ticket.state, ticket.closed_at = "closed", now
        core.fire(session, ticket, "closed", owner_sender, now, reason="satisfied")
        return Outcome(replies=[f"感谢您的评价（{score}分）！工单{ticket.number}已办结，有需要随时找我。"], intent="complaint")
    # Dissatisfied: back to the supervisor, who owns the follow-up until the owner is satisfied.
    sup = roster().escalation["supervisor"]
    prev = ticket.assignee
    ticket.state, ticket.assignee = "reopened", sup
    ticket.reopen_count += 1
    core.fire(session, ticket, "reopened", owner_sender, now, score=score, comment=comment, previous=prev,
              to=sup)
    out = Outcome(intent="complaint")
    ticket.version += 1
    out.pushes.append(core.card_push(
        session, ticket, [sup], f"{ticket.number}v{ticket.version}",
        f"业主不满意：{ticket.number} 请跟进", core.WORK_BUTTONS,
        desc=f"评分{score}分：{comment or '未留言'} · 原处理人{core.staff_name(session, prev)}"))
    out.replies.append(f"非常抱歉没能让您满意。已请{core.staff_name(session, sup)}亲自跟进工单{ticket.number}，"
                       f"会尽快联系您，直到您满意为止。")
    return out


@capability.conversation(SURVEY_CONV)
def on_survey_reply(ctx: Context, msg: Message, conv) -> Outcome | None:
    parsed = parse_answer(msg.text)
    if parsed is None:
        return None  # not an answer: the question stays open, the router takes the message
    ticket = core.get_ticket(ctx.session, conv.state.get("ticket"))
    conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
    if ticket is None or ticket.state != "completed":
        return None
    return answer(ctx.session, ticket, msg.sender, parsed[0], parsed[1], ctx.now)


@capability.text_command("ticket_rate", r"^评价\s*[Tt]?\s*(?P<n>\d+)\s*(?P<answer>.*)$", chats=("private",),
                         roles=("owner", "admin"), why="owner rates a finished ticket (O9)")
def cmd_rate(ctx: Context, msg: Message, route) -> Outcome:
    args = (route.args or {}).get("match") or {}
    ticket = core.get_ticket(ctx.session, int(args["n"]))
    owner = find_owner(ctx.session, msg)
    if ticket is None or not (ticket.sender == msg.sender or (owner and ticket.owner_id == owner.id)):
        return Outcome(replies=["没有找到您的这个工单，回复「我的工单」查看。"], intent="command")
    if ticket.state != "completed":
        return Outcome(replies=[f"工单{ticket.number}当前{core.STATE_LABELS.get(ticket.state)}，完成后再评价。"],
                       intent="command")
    parsed = parse_answer(args.get("answer") or "")
    if parsed is None:
        return Outcome(replies=[f"请回复「评价 {ticket.number} 5」（1-5分），或「评价 {ticket.number} 满意/一般/不满意」。"],
                       intent="command")
    current = conversation.get(ctx.session, msg.sender, msg.chat, ctx.now)
    if current is not None and current.handler == SURVEY_CONV and current.state.get("ticket") == ticket.id:
        conversation.end(ctx.session, msg.sender, msg.chat)
    return answer(ctx.session, ticket, msg.sender, parsed[0], parsed[1], ctx.now)
