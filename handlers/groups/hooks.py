"""What happens to every customer-group message after routing: moderation
(strikes, the muted member who keeps talking), suggested replies for the
staff admin, and the staff admin's clicks on moderation/admission cards."""
from __future__ import annotations

import logging
from pathlib import Path


from sqlalchemy import select

from ground import rules as rulefiles
from handlers import moderation_hook
from handlers.groups import ladder
from handlers.groups.capability import capability
from handlers.groups.membership import decide_admission
from handlers.groups.moderation import check as moderation_check
from handlers.groups.moderation import mask
from handlers.identity import find_owner, find_staff
from handlers.message import Context, Message, Outcome, Push
from store.models import Group
from store.models.groups import GroupAdmission, GroupSuggestion, ModerationCase

log = logging.getLogger(__name__)

moderation_hook.set_checker(moderation_check)


@capability.event("__group_message__")
def on_group_message(ctx: Context, msg: Message, out: Outcome) -> Outcome:
    """Runs for every text in a customer group (dispatch._finish)."""
    if msg.kind != "text" or not msg.group_id:
        return out
    if find_staff(ctx.session, msg.sender):
        return out  # the property's own people are not moderated
    if out.intent == "command" and msg.role == "admin":
        return out  # "/警告 @x 发广告加微信" quotes the offence; it is not one
    if ladder.removal_pending(ctx.session, msg.group_id, msg.sender):
        out.replies = []  # already at the top of the ladder: one card is enough, not one per message
        return out
    route = out.route or {}
    violation = route.get("violation")
    why = route.get("why") or ""
    if violation is None:
        violation, _, why = moderation_check(msg.text, msg.chat, msg.role or "owner")
    if violation != "none":
        case, pushes = ladder.strike(ctx.session, ctx.now, chat_id=msg.group_id, member_id=msg.sender,
                                     violation=violation, why=why, evidence=mask(msg.text), msg_id=msg.msg_id)
    else:
        mute = ladder.active_mute(ctx.session, msg.group_id, msg.sender, ctx.now)
        if mute is None:
            return out
        case, pushes = ladder.strike(ctx.session, ctx.now, chat_id=msg.group_id, member_id=msg.sender,
                                     violation="muted_speech", why=f"spoke while muted (case {mute.id})",
                                     evidence=mask(msg.text), msg_id=msg.msg_id)
    # A rule-breaker's question gets no suggested answer; the staff admin gets the card.
    out.replies = []
    out.pushes.extend(pushes)
    if out.route is not None:
        out.route = {**out.route, "violation": case.violation if case.violation in
                     ("ad", "insult", "privacy", "illegal") else out.route.get("violation", "none"),
                     "action": case.step}
    return out


REPLIES = rulefiles.RuleFile(Path(__file__).with_name("data") / "replies.yaml", schema=rulefiles.Record(
    suggest_intents=rulefiles.ListOf(rulefiles.Text()),
    min_faq_score=rulefiles.Opt(rulefiles.Number(min=0, max=1), 0.6)))


def _reply_rules() -> dict:
    return REPLIES.get()


# --- suggested replies -----------------------------------------------------------------------

@capability.event("__group_replies__")
def on_group_replies(ctx: Context, msg: Message, out: Outcome) -> Outcome:
    """No bot can post into a customer group: each reply becomes a suggestion
    the staff admin sends with one tap from the sidebar (only the replies
    data/replies.yaml keeps: group chatter must not flood the staff admin)."""
    rules = _reply_rules()
    route = out.route or {}
    intent = out.intent or route.get("intent")
    if intent == "command" and msg.role == "owner":
        # An owner's refused or mistyped command concerns only them: answer in
        # their private chat rather than asking staff to post it to everyone.
        owner = find_owner(ctx.session, msg)
        if owner is not None and owner.openid:
            out.pushes.extend(Push(channel="mp", recipient=owner.openid, kind="text", payload={"content": text},
                                   dedup_key=f"cmdreply:{msg.msg_id or msg.dedup_key()}:{i}"[:128], priority=3,
                                   source=f"group:{msg.group_id}")
                              for i, text in enumerate(out.replies))
        out.replies = []
        return out
    if intent not in rules["suggest_intents"] or (
            intent == "faq" and float(route.get("score") or 0) < float(rules["min_faq_score"])):
        out.replies = []
        return out
    group = ctx.session.scalar(select(Group).where(Group.chat_id == msg.group_id))
    admin = ladder.staff_admin_of(ctx.session, group)
    if admin is None:
        log.warning("group %s has no staff admin: %d replies dropped", msg.group_id, len(out.replies))
        out.replies = []
        return out
    who = ladder.member_name(ctx.session, msg.sender)
    for i, text in enumerate(out.replies):
        text = mask(text, strict=False)  # answers never carry personal data out either
        key = f"sugg:{msg.group_id}:{msg.msg_id or msg.dedup_key()}:{i}"
        if ctx.session.scalar(select(GroupSuggestion).where(GroupSuggestion.dedup_key == key)):
            continue
        sugg = GroupSuggestion(group_chat_id=msg.group_id or "", staff_userid=admin, reply_to=msg.sender,
                               question=mask(msg.text)[:500], text=text, intent=out.intent, dedup_key=key,
                               created_at=ctx.now)
        ctx.session.add(sugg)
        ctx.session.flush()
        out.pushes.append(Push(channel="wecom", recipient=admin, kind="group_task",
                               payload={"group_id": msg.group_id, "group_name": group.name if group else "",
                                        "text": text, "reason": f"回复{who}：{mask(msg.text)[:40]}",
                                        "reply_to": msg.sender, "suggestion_id": sugg.id},
                               dedup_key=key, priority=3, source=f"suggestion:{sugg.id}"))
    out.replies = []
    return out


# --- card clicks -------------------------------------------------------------------------------

def _update_card(msg: Message, text: str) -> list[Push]:
    code = msg.data.get("ResponseCode")
    if not code:
        return []
    return [Push(channel="wecom", recipient=msg.sender, kind="update_card",
                 payload={"response_code": code, "button": {"replace_name": text}},
                 dedup_key=f"upd:{code}"[:128], priority=2)]


@capability.card("mod:")
def on_mod_card(ctx: Context, msg: Message, key: str) -> Outcome:
    """mod:done:ID / mod:fp:ID (moderation), mod:admit:ID / mod:kick:ID (admission)."""
    parts = key.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        return Outcome(intent="event")
    _, action, ident = parts
    out = Outcome(intent="event")
    if action in ("done", "fp"):
        case = ctx.session.get(ModerationCase, int(ident))
        if case is None:
            return out
        if not ladder.can_decide(ctx.session, case.group_chat_id, msg.sender):
            out.pushes.append(Push(channel="wecom", recipient=msg.sender, kind="text",
                                   payload={"content": "只有该群的管理员可以处理这张卡片。"}))
            return out
        status = ladder.decide(ctx.session, ctx.now, case, action, msg.sender)
        out.pushes.extend(_update_card(msg, "已撤销（不算违规）" if action == "fp" else "已处理"))
        log.info("moderation case %s -> %s by %s", case.id, status, msg.sender)
        return out
    if action in ("admit", "kick"):
        adm = ctx.session.get(GroupAdmission, int(ident))
        if adm is None:
            return out
        if not ladder.can_decide(ctx.session, adm.group_chat_id, msg.sender):
            return out
        decide_admission(ctx.session, ctx.now, adm, action, msg.sender)
        out.pushes.extend(_update_card(msg, "已同意入群" if action == "admit" else "已移出"))
    return out
