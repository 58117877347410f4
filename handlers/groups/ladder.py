"""The sanctions ladder (warning -> mute -> removal) for customer-group members.

No API can post, mute or remove in a WeCom customer group (PLATFORM.md), so
every step is a button card to the group's staff admin: the ready text to
post, the evidence with personal data masked, and "done" / "not a violation".
Every step is a `ModerationCase` row, kept for appeals; "not a violation"
reverses the strike and counts as a false positive.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ground import rules as rulefiles
from ground.clock import CST
from handlers import scope
from handlers.message import Push
from store.models import AuditLog, Group, GroupMember, Owner, Staff
from store.models.groups import ModerationCase

log = logging.getLogger(__name__)
DATA_FILE = Path(__file__).with_name("data") / "ladder.yaml"
STEPS = ("warn", "mute", "remove")


@dataclass(frozen=True)
class LadderRules:
    thresholds: dict[str, int]
    decay_days: int
    mute_minutes: int
    weights: dict[str, int]


_COUNT = rulefiles.Int(min=1)
_LADDER = rulefiles.Record(thresholds=rulefiles.MapOf(_COUNT, key=rulefiles.OneOf(*STEPS)),
                           decay_days=_COUNT, mute_minutes=_COUNT, weights=rulefiles.MapOf(_COUNT))
_TEXTS = rulefiles.MapOf(rulefiles.AnyValue())
SCHEMA = rulefiles.Record(default=rulefiles.AnyValue(), overrides=rulefiles.Opt(rulefiles.MapOf(rulefiles.AnyValue()), {}),
                          texts=_TEXTS, labels=_TEXTS, step_labels=_TEXTS)


def _rules_from(raw: dict, where: str, src: rulefiles.Source) -> LadderRules:
    raw = rulefiles.validate(raw, _LADDER, _Within(src, where))
    th = raw["thresholds"]
    if set(th) != set(STEPS) or not (0 < th["warn"] <= th["mute"] <= th["remove"]):
        raise src.fail(f"{where}.thresholds", "must give warn <= mute <= remove, all > 0")
    return LadderRules(dict(th), raw["decay_days"], raw["mute_minutes"], dict(raw["weights"]))


class _Within(rulefiles.Source):
    """Errors of one entry (default, overrides.<chat>) name it after the file."""

    def __init__(self, src: rulefiles.Source, where: str) -> None:
        super().__init__(src.path)
        self.name = f"{src.name}: {where}"


def _build(raw: dict, src: rulefiles.Source) -> dict[str, Any]:
    default = raw["default"] or {}
    rules = {"default": _rules_from(default, "default", src)}
    for key, over in raw["overrides"].items():
        rules[str(key)] = _rules_from({**default, **(over or {})}, f"overrides.{key}", src)
    missing = set(STEPS) - set(raw["texts"])
    if missing:
        raise src.fail("texts", f"missing {sorted(missing)}")
    return {"rules": rules, "texts": raw["texts"], "labels": raw["labels"], "step_labels": raw["step_labels"]}


LADDER = rulefiles.RuleFile(DATA_FILE, schema=SCHEMA, build=_build)


def _data() -> dict[str, Any]:
    return LADDER.get()


def rules_for(chat_kind: str, chat_id: str | None = None) -> LadderRules:
    """A group's own override, else its kind's (vip / building), else the default."""
    rules = _data()["rules"]
    return rules.get(chat_id or "") or rules.get(chat_kind) or rules["default"]


def step_for(total: int, rules: LadderRules) -> str:
    step = "warn"
    for s in STEPS:
        if total >= rules.thresholds[s]:
            step = s
    return step


def first_action(violation: str, chat: str) -> str:
    """The step a member with no earlier strike gets (route()'s `action`)."""
    rules = rules_for(chat)
    return step_for(rules.weights.get(violation, 1), rules)


def label(violation: str) -> str:
    return _data()["labels"].get(violation, violation)


def step_label(step: str) -> str:
    return _data()["step_labels"].get(step, step)


# --- the store side --------------------------------------------------------------------------

def active_strikes(session: Session, chat_id: str, member_id: str, now: datetime, rules: LadderRules) -> int:
    since = now - timedelta(days=rules.decay_days)
    rows = session.scalars(select(ModerationCase).where(
        ModerationCase.group_chat_id == chat_id, ModerationCase.member_id == member_id,
        ModerationCase.status != "reversed")).all()
    return sum(r.strikes for r in rows if r.created_at >= since)


def active_mute(session: Session, chat_id: str, member_id: str, now: datetime) -> ModerationCase | None:
    rows = session.scalars(select(ModerationCase).where(
        ModerationCase.group_chat_id == chat_id, ModerationCase.member_id == member_id,
        ModerationCase.step == "mute", ModerationCase.status.in_(("open", "done")))).all()
    return next((r for r in rows if r.mute_until and r.mute_until > now), None)


def removal_pending(session: Session, chat_id: str, member_id: str) -> bool:
    """A removal was asked for (and not reversed): further speech adds nothing."""
    return session.scalar(select(ModerationCase.id).where(
        ModerationCase.group_chat_id == chat_id, ModerationCase.member_id == member_id,
        ModerationCase.step == "remove", ModerationCase.status.in_(("open", "done"))).limit(1)) is not None


def member_name(session: Session, member_id: str) -> str:
    owner = session.scalar(select(Owner).where(Owner.external_userid == member_id))
    return owner.name if owner else member_id


def staff_admin_of(session: Session, group: Group | None) -> str | None:
    """The staff admin's userid; a supervisor when the group has none (001, 二.2)."""
    if group is not None and group.staff_admin is not None and group.staff_admin.active:
        return group.staff_admin.userid
    sup = session.scalar(select(Staff).where(Staff.role.in_(("supervisor", "manager")), Staff.active.is_(True))
                         .order_by(Staff.id))
    return sup.userid if sup else None


def strike(session: Session, now: datetime, *, chat_id: str, member_id: str, violation: str, why: str,
           evidence: str | None, msg_id: str | None = None, inbox_id: int | None = None,
           source: str = "auto", actor: str | None = None, force_step: str | None = None,
           mute_minutes: int | None = None) -> tuple[ModerationCase, list[Push]]:
    """Add a strike, pick the step, record the case and build the staff admin's card.

    `evidence` must already be masked (handlers.groups.moderation.mask)."""
    group = session.scalar(select(Group).where(Group.chat_id == chat_id))
    kind = group.kind if group else "vip"
    rules = rules_for(kind, chat_id)
    weight = rules.weights.get(violation, 1)
    total = active_strikes(session, chat_id, member_id, now, rules) + weight
    step = force_step or step_for(total, rules)
    minutes = mute_minutes or rules.mute_minutes
    case = ModerationCase(group_chat_id=chat_id, member_id=member_id, violation=violation, step=step,
                          strikes=weight if not force_step else (weight if source == "auto" else 1),
                          strike_total=total, source=source, actor=actor, why=why, evidence=evidence,
                          msg_id=msg_id, inbox_id=inbox_id, created_at=now,
                          mute_until=now + timedelta(minutes=minutes) if step == "mute" else None)
    name = member_name(session, member_id)
    until = case.mute_until.astimezone(CST).strftime("%m-%d %H:%M") if case.mute_until else ""
    case.warning_text = _data()["texts"][step].format(name=name, what=label(violation), until=until,
                                                      minutes=minutes)
    session.add(case)
    session.flush()
    session.add(AuditLog(actor=actor or "bot", action=f"moderation.{step}", target=f"{chat_id}/{member_id}",
                         detail={"case": case.id, "violation": violation, "strikes": total, "source": source},
                         created_at=now))
    log.info("moderation case %s: %s in %s -> %s (strikes %s)", case.id, violation, chat_id, step, total)
    pushes = []
    admin = staff_admin_of(session, group)
    if admin:
        pushes.append(Push(channel="wecom", recipient=admin, kind="template_card",
                           payload={"card": case_card(case, group, name)}, dedup_key=f"mod:{case.id}:card",
                           priority=2, source=f"mod_case:{case.id}"))
    else:
        log.warning("moderation case %s: group %s has no staff admin and no supervisor exists", case.id, chat_id)
    return case, pushes


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def case_card(case: ModerationCase, group: Group | None, name: str) -> dict:
    """A WeCom button_interaction template_card; nothing unmasked in it."""
    gname = group.name if group else case.group_chat_id
    rows = [{"keyname": "违规类型", "value": label(case.violation)},
            {"keyname": "累计违规", "value": f"{case.strike_total}次"},
            {"keyname": "处理", "value": step_label(case.step)}]
    if case.mute_until:
        rows.append({"keyname": "禁言至", "value": case.mute_until.astimezone(CST).strftime("%m-%d %H:%M")})
    return {
        "card_type": "button_interaction",
        "source": {"desc": "群管家 · 群规"},
        "main_title": {"title": _clip(f"{step_label(case.step)}：{name}", 26), "desc": _clip(gname, 30)},
        "quote_area": {"type": 0, "title": "违规内容（已脱敏）", "quote_text": _clip(case.evidence or "", 200)},
        "sub_title_text": _clip(f"请在群内发送：{case.warning_text}", 112),
        "horizontal_content_list": rows,
        "task_id": f"mod-{case.id}",
        "button_list": [{"text": "已处理", "style": 1, "key": f"mod:done:{case.id}"},
                        {"text": "不算违规", "style": 2, "key": f"mod:fp:{case.id}"}],
    }


def decide(session: Session, now: datetime, case: ModerationCase, decision: str, actor: str) -> str:
    """`done` (the staff admin applied the step) or `fp` (not a violation:
    the strike is reversed and counted as a false positive)."""
    if case.status == "reversed":
        return "already reversed"
    if decision == "done" and case.status == "done":
        return "already done"
    # "fp" after "done" is allowed: an appeal can reverse a step already applied.
    case.decided_by, case.decided_at = actor, now
    if decision == "fp":
        case.status, case.false_positive = "reversed", True
        if case.mute_until and case.mute_until > now:
            case.mute_until = now  # a wrong strike must not keep anyone muted
    else:
        case.status = "done"
        if case.step == "remove":
            member = session.scalar(select(GroupMember).join(Group).where(
                Group.chat_id == case.group_chat_id, GroupMember.member_id == case.member_id))
            if member is not None:
                member.state = "removed"
    session.add(AuditLog(actor=actor, action=f"moderation.{'reverse' if decision == 'fp' else 'done'}",
                         target=f"{case.group_chat_id}/{case.member_id}",
                         detail={"case": case.id, "step": case.step, "violation": case.violation},
                         created_at=now))
    return case.status


def false_positive_rate(session: Session) -> tuple[int, int]:
    """(reversed, all automatic cases): the live false-positive count."""
    rows = session.scalars(select(ModerationCase).where(ModerationCase.source == "auto")).all()
    return sum(1 for r in rows if r.false_positive), len(rows)


def can_decide(session: Session, chat_id: str, userid: str) -> bool:
    """The group's staff admin, or a supervisor / manager, may act on its cards."""
    staff = session.scalar(select(Staff).where(Staff.userid == userid, Staff.active.is_(True)))
    if staff is None:
        return False
    if staff.role in ("supervisor", "manager"):
        if scope.can_see_group(session, scope.for_staff(session, staff), chat_id):
            return True
    group = session.scalar(select(Group).where(Group.chat_id == chat_id))
    return group is not None and group.staff_admin_id == staff.id
