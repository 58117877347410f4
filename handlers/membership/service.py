"""Membership in the store: spend, tiers, applications, sanctions, the monthly
evaluation. Every change writes a history row and an audit entry."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ground.clock import CST
from handlers import clocks
from handlers.identity import find_staff
from handlers.membership import rules as R
from handlers.membership.notify import (clock_config, dedicated_agent, owner_push, promise, recipients,
                                        task_card, team_members)
from handlers.message import Push
from store.models import (AuditLog, DowngradeNotice, Home, MemberApplication, MemberSanction, Owner,
                          SpendEntry, TierChange)


def local_day(now: datetime) -> date:
    return now.astimezone(CST).date()


# --- facts -----------------------------------------------------------------------

def add_spend(session: Session, owner: Owner, amount_yuan: float, spent_on: date, category: str,
              note: str | None = None, entered_by: str | None = None) -> SpendEntry:
    row = SpendEntry(owner_id=owner.id, amount_fen=round(amount_yuan * 100), spent_on=spent_on,
                     category=category, note=note, entered_by=entered_by)
    session.add(row)
    session.flush()
    return row


def spend_fen(session: Session, owner_id: int, since: date | None, until: date) -> int:
    q = select(func.coalesce(func.sum(SpendEntry.amount_fen), 0)).where(SpendEntry.owner_id == owner_id,
                                                                       SpendEntry.spent_on <= until)
    if since is not None:
        q = q.where(SpendEntry.spent_on >= since)
    return int(session.scalar(q) or 0)


def window_spend(session: Session, owner: Owner, today: date, rules: R.TierRules | None = None) -> int:
    rules = rules or R.load_rules()
    return spend_fen(session, owner.id, R.window_start(today, rules.spend_window_months), today)


def upgrade_spend(session: Session, owner: Owner, today: date, rules: R.TierRules | None = None) -> int:
    rules = rules or R.load_rules()
    if rules.upgrade_spend_basis == "window":
        return window_spend(session, owner, today, rules)
    since = owner.tier_since if rules.upgrade_spend_basis == "since_tier" and owner.tier != rules.default_tier else None
    return spend_fen(session, owner.id, since, today)


def eligibility(session: Session, owner: Owner, today: date) -> R.Eligibility:
    rules = R.load_rules()
    return R.eligibility(rules, owner.tier or rules.default_tier, owner.move_in_date,
                         upgrade_spend(session, owner, today, rules), today)


def active_suspension(session: Session, owner_id: int, now: datetime) -> MemberSanction | None:
    return session.scalar(select(MemberSanction).where(
        MemberSanction.owner_id == owner_id, MemberSanction.action == "suspend", MemberSanction.lifted_at.is_(None),
        MemberSanction.starts_at <= now,
        or_(MemberSanction.ends_at.is_(None), MemberSanction.ends_at > now)).order_by(MemberSanction.id.desc()))


# --- tier changes --------------------------------------------------------------------

def change_tier(session: Session, owner: Owner, to_tier: str, basis: str, actor: str, now: datetime,
                reason: str | None = None) -> TierChange:
    rules = R.load_rules()
    if to_tier not in rules.order:
        raise ValueError(f"unknown tier {to_tier!r}")
    row = TierChange(owner_id=owner.id, from_tier=owner.tier, to_tier=to_tier, basis=basis, reason=reason,
                     actor=actor, effective_on=local_day(now))
    session.add(row)
    session.add(AuditLog(actor=actor, action="member_tier_change", target=f"owner:{owner.id}",
                         detail={"from": owner.tier, "to": to_tier, "basis": basis, "reason": reason}))
    owner.tier, owner.tier_since = to_tier, local_day(now)
    # A tier change settles any pending downgrade notice.
    for n in session.scalars(select(DowngradeNotice).where(DowngradeNotice.owner_id == owner.id,
                                                           DowngradeNotice.state == "pending")):
        n.state, n.closed_at = ("applied" if basis == "downgrade_spend" else "cancelled"), now
    session.flush()
    return row


def grant_special_contribution(session: Session, owner: Owner, to_tier: str, reason: str, actor: str,
                               now: datetime) -> tuple[TierChange, list[Push]]:
    """第九条 3: a manager upgrades an owner directly for a special contribution."""
    staff = find_staff(session, actor)
    if staff is None or staff.role != "manager":
        raise PermissionError("special-contribution upgrades are entered by a manager")
    if not reason or not reason.strip():
        raise ValueError("a reason is required")
    rules = R.load_rules()
    if rules.rank(to_tier) <= rules.rank(owner.tier):
        raise ValueError(f"{owner.name} is already {owner.tier}")
    row = change_tier(session, owner, to_tier, "contribution", actor, now, reason)
    p = owner_push(owner, f"恭喜！因您对社区的特殊贡献（{reason}），您已升级为{to_tier}会员。回复「我的会员」查看权益。",
                   now, dedup_key=f"member:{owner.id}:tier:{row.id}", source=f"member:{owner.id}")
    return row, [p] if p else []


def record_breach(session: Session, owner: Owner, action: str, reason: str, actor: str, now: datetime,
                  days: int | None = None) -> tuple[MemberSanction, list[Push]]:
    """第十条 2: warn, suspend member benefits for a period, or downgrade one step."""
    rules = R.load_rules()
    if action not in ("warn", "suspend", "downgrade"):
        raise ValueError("action must be warn, suspend or downgrade")
    ends = None
    if action == "suspend":
        ends = now + timedelta(days=days or rules.suspend_default_days)
    row = MemberSanction(owner_id=owner.id, action=action, reason=reason, actor=actor, starts_at=now, ends_at=ends)
    session.add(row)
    session.add(AuditLog(actor=actor, action=f"member_{action}", target=f"owner:{owner.id}",
                         detail={"reason": reason, "until": ends.isoformat() if ends else None}))
    session.flush()
    if action == "warn":
        text = f"【会员提醒】因{reason}，依据《物业会员制制度》第十条给予警告。如再次违反，将暂停会员权益直至降级。"
    elif action == "suspend":
        text = (f"【会员权益暂停】因{reason}，您的会员权益暂停至{ends.astimezone(CST):%Y年%m月%d日}"
                f"（第十条）。期间会员专属服务暂不可预约。")
    else:
        lower = rules.lower_tier(owner.tier)
        if lower is None:
            raise ValueError(f"{owner.name} is already at the lowest tier")
        change_tier(session, owner, lower, "breach", actor, now, reason)
        text = f"【会员降级】因{reason}，依据第十条，您的会员等级已调整为{lower}。"
    p = owner_push(owner, text, now, dedup_key=f"member:{owner.id}:sanction:{row.id}", source=f"member:{owner.id}")
    return row, [p] if p else []


def lift_suspension(session: Session, owner: Owner, actor: str, now: datetime) -> tuple[MemberSanction | None, list[Push]]:
    """End a suspension early (recorded; the owner is told)."""
    sus = active_suspension(session, owner.id, now)
    if sus is None:
        return None, []
    sus.lifted_at = now
    session.add(AuditLog(actor=actor, action="member_suspension_lifted", target=f"owner:{owner.id}",
                         detail={"sanction": sus.id}))
    session.flush()
    p = owner_push(owner, "您的会员权益已恢复，感谢您对社区管理的理解与支持。", now,
                   dedup_key=f"member:{owner.id}:sanction:{sus.id}:lifted", source=f"member:{owner.id}")
    return sus, [p] if p else []


# --- applications (O2 review) ------------------------------------------------------------

def apply_upgrade(session: Session, owner: Owner, now: datetime) -> tuple[str, list[Push]]:
    """The owner asks to move up: refused with what is missing, or a staff task."""
    e = eligibility(session, owner, local_day(now))
    if e.target is None:
        return f"您已是最高等级（{owner.tier}）会员。", []
    pending = session.scalar(select(MemberApplication).where(MemberApplication.owner_id == owner.id,
                                                             MemberApplication.state == "pending"))
    if pending:
        return f"您的{pending.target_tier}升级申请（编号 M{pending.id}）正在审核中，我们会在{promise('O2_review')}给您答复。", []
    if not e.eligible:
        return f"暂未满足升级{e.target}的条件。\n" + gap_text(e), []
    app = MemberApplication(owner_id=owner.id, from_tier=owner.tier, target_tier=e.target, basis=",".join(e.met))
    session.add(app)
    session.flush()
    team = clock_config().get("review_team", "customer_service")
    staff = team_members(session, team)
    to = recipients(staff)
    basis = "、".join({"spend": f"累计消费{R.yuan(e.spend_fen)}元", "tenure": "居住年限"}[b] for b in e.met)
    clocks.start(session, "service", f"application:{app.id}", "O2_review", now, owner_id=owner.id, team=team, assignee=to,
                detail={"title": f"{owner.name}（{owner.room}）申请升级{e.target}"})
    session.add(AuditLog(actor=owner.openid or str(owner.id), action="member_apply", target=f"application:{app.id}",
                         detail={"target": e.target, "basis": e.met}))
    pushes = [task_card(to, f"member-app-{app.id}", f"会员升级申请 M{app.id}", f"请在{promise('O2_review')}审核（第十二条）",
                        [("业主", owner.name), ("房号", owner.room or "-"), ("现等级", owner.tier),
                         ("申请", e.target), ("依据", basis)],
                        [("通过", f"member:approve:{app.id}"), ("驳回", f"member:reject:{app.id}")],
                        dedup_key=f"member:app:{app.id}:card", source=f"application:{app.id}")] if to else []
    return (f"已提交{e.target}升级申请（编号 M{app.id}，依据：{basis}）。工作人员会在{promise('O2_review')}审核，结果会第一时间通知您。",
            pushes)


def review_application(session: Session, app_id: int, approve: bool, reviewer: str, now: datetime,
                       note: str | None = None) -> tuple[str, list[Push]]:
    app = session.get(MemberApplication, app_id)
    if app is None:
        return f"没有找到申请 M{app_id}。", []
    if app.state != "pending":
        return f"申请 M{app_id} 已处理（{app.state}，{app.reviewed_by}）。", []
    owner = app.owner
    app.state = "approved" if approve else "rejected"
    app.reviewed_by, app.reviewed_at, app.note = reviewer, now, note
    clocks.stop_named(session, f"application:{app.id}", "O2_review", now, by=reviewer)
    session.add(AuditLog(actor=reviewer, action="member_review", target=f"application:{app.id}",
                         detail={"approved": approve, "note": note}))
    if approve:
        change_tier(session, owner, app.target_tier, app.basis.split(",")[0] or "application", reviewer, now)
        text = f"恭喜！您的会员升级申请（M{app.id}）已审核通过，您现在是{app.target_tier}会员。回复「我的会员」查看权益。"
    else:
        text = f"您的会员升级申请（M{app.id}）未通过审核{('：' + note) if note else ''}。如有疑问请回复「人工」。"
    p = owner_push(owner, text, now, dedup_key=f"member:app:{app.id}:result", source=f"application:{app.id}")
    return (f"已{'通过' if approve else '驳回'}申请 M{app.id}（{owner.name}）。", [p] if p else [])


# --- texts -----------------------------------------------------------------------------

def gap_text(e: R.Eligibility) -> str:
    """What is missing for the next tier, or that nothing is."""
    if e.target is None:
        return f"您已是最高等级（{e.current}）。"
    if e.eligible:
        met = "、".join({"spend": f"累计消费{R.yuan(e.spend_fen)}元", "tenure": "居住年限"}[b] for b in e.met)
        return f"您已满足升级{e.target}的条件（{met}），回复「申请升级」即可申请。"
    ways = []
    if e.spend_missing_fen is not None:
        ways.append(f"再消费{R.yuan(e.spend_missing_fen)}元（已累计{R.yuan(e.spend_fen)}元）")
    if e.tenure_due is not None:
        ways.append(f"或于{e.tenure_due:%Y年%m月%d日}居住年限达标")
    if e.special_contribution:
        ways.append("或经物业评估的特殊贡献")
    return f"升级{e.target}：" + "；".join(ways) + "。"


def summary(session: Session, owner: Owner, now: datetime) -> str:
    """我的会员: tier, since, 12-month spend, the way up, benefits in force."""
    rules = R.load_rules()
    today = local_day(now)
    tier = rules.tiers.get(owner.tier) or rules.tiers[rules.default_tier]
    w = window_spend(session, owner, today, rules)
    since = owner.tier_since or (owner.home.handover_date if owner.home else None)
    lines = [f"{owner.name}，您好！您是{tier.name}会员" + (f"（自{since:%Y年%m月%d日}起）" if since else "") + "。",
             f"近12个月消费：{R.yuan(w)}元" + (f"（保级标准{R.yuan(tier.keep_spend_fen)}元）" if tier.keep_spend_fen else "") + "。"]
    at_risk = not R.keeps_tier(rules, tier.name, owner.tier_since, w, today)
    if at_risk:
        short = (tier.keep_spend_fen or 0) - w
        lines.append("注意：近12个月消费未达保级标准" + (f"（还差{R.yuan(short)}元）" if short > 0 else "")
                     + "，可能被降级。")
    notice = session.scalar(select(DowngradeNotice).where(DowngradeNotice.owner_id == owner.id,
                                                          DowngradeNotice.state == "pending"))
    if notice:
        at_risk = True
        lines.append(f"降级提醒：若{notice.due_on:%Y年%m月%d日}前近12个月消费仍低于标准，将调整为{notice.to_tier}。")
    e = eligibility(session, owner, today)
    # "可能被降级" next to "已满足升级" reads as a contradiction: an owner at risk
    # hears about keeping the tier; the way up is for 「我还差多少」 / 「申请升级」.
    if e.target and not (at_risk and e.eligible):
        lines.append(gap_text(e))
    sus = active_suspension(session, owner.id, now)
    if sus:
        lines.append(f"会员权益暂停中（{sus.reason}），至{sus.ends_at.astimezone(CST):%Y年%m月%d日}恢复。"
                     if sus.ends_at else f"会员权益暂停中（{sus.reason}）。")
    else:
        lines.append("当前权益：\n" + "\n".join(f"· {b}" for b in tier.benefits))
        agent = dedicated_agent(session, owner)
        if agent:
            lines.append(f"您的专属客服：{agent.name}" + (f"（{agent.phone}）" if agent.phone else ""))
    return "\n".join(lines)


def find_owner_by_key(session: Session, key: str) -> Owner | None:
    """A staff look-up key: room (1-1201), phone, name or openid."""
    key = key.strip()
    return (session.scalar(select(Owner).join(Home, Owner.home_id == Home.id).where(Home.room == key))
            or session.scalar(select(Owner).where(or_(Owner.phone == key, Owner.openid == key, Owner.name == key))))


def staff_lookup(session: Session, staff_userid: str, key: str, now: datetime) -> str:
    owner = find_owner_by_key(session, key)
    session.add(AuditLog(actor=staff_userid, action="member_lookup", target=f"owner:{owner.id}" if owner else key,
                         detail={"key": key}))
    if owner is None:
        return f"没有找到业主「{key}」。"
    return f"【会员查询·已记录】{owner.name} {owner.room or ''}\n" + summary(session, owner, now)


# --- the monthly job ---------------------------------------------------------------------

def evaluate_memberships(session: Session, now: datetime) -> list[Push]:
    """Monthly: tell owners who can move up, warn those below their keep
    threshold (with `downgrade_notice_days` notice), apply due downgrades.
    Safe to re-run: notices are rows, pushes carry dedup keys."""
    rules = R.load_rules()
    today = local_day(now)
    pushes: list[Push] = []
    for owner in session.scalars(select(Owner).order_by(Owner.id)):
        if owner.tier not in rules.order:
            continue
        w = window_spend(session, owner, today, rules)
        notice = session.scalar(select(DowngradeNotice).where(DowngradeNotice.owner_id == owner.id,
                                                              DowngradeNotice.state == "pending"))
        keeps = R.keeps_tier(rules, owner.tier, owner.tier_since, w, today)
        if notice is not None:
            if keeps or notice.from_tier != owner.tier:
                notice.state, notice.closed_at = "cancelled", now
                if keeps and notice.from_tier == owner.tier:
                    p = owner_push(owner, f"您近12个月消费已达{R.yuan(w)}元，{owner.tier}会员资格保留。", now,
                                   dedup_key=f"member:{owner.id}:notice:{notice.id}:kept", source=f"member:{owner.id}")
                    pushes += [p] if p else []
            elif today >= notice.due_on:
                change_tier(session, owner, notice.to_tier, "downgrade_spend", "system", now,
                            f"近12个月消费{R.yuan(w)}元，低于{notice.from_tier}保级标准"
                            f"{R.yuan(rules.tiers[notice.from_tier].keep_spend_fen)}元")
                p = owner_push(owner, f"【会员等级调整】您近12个月消费{R.yuan(w)}元，未达{notice.from_tier}保级标准，"
                                      f"会员等级已调整为{notice.to_tier}（第十条）。", now,
                               dedup_key=f"member:{owner.id}:notice:{notice.id}:applied", source=f"member:{owner.id}")
                pushes += [p] if p else []
                continue
        elif not keeps:
            lower = rules.lower_tier(owner.tier)
            due = today + timedelta(days=rules.downgrade_notice_days)
            notice = DowngradeNotice(owner_id=owner.id, from_tier=owner.tier, to_tier=lower, spend_fen=w, due_on=due)
            session.add(notice)
            session.flush()
            keep = rules.tiers[owner.tier].keep_spend_fen
            session.add(AuditLog(actor="system", action="member_downgrade_notice", target=f"owner:{owner.id}",
                                 detail={"from": owner.tier, "to": lower, "spend_fen": w, "due_on": due.isoformat()}))
            p = owner_push(owner, f"【会员保级提醒】您近12个月消费{R.yuan(w)}元，低于{owner.tier}保级标准{R.yuan(keep)}元。"
                                  f"若{due:%Y年%m月%d日}前仍未达标，会员等级将调整为{lower}。", now,
                           dedup_key=f"member:{owner.id}:notice:{notice.id}", source=f"member:{owner.id}")
            pushes += [p] if p else []
        e = R.eligibility(rules, owner.tier, owner.move_in_date, upgrade_spend(session, owner, today, rules), today)
        if e.eligible:
            pending = session.scalar(select(MemberApplication.id).where(MemberApplication.owner_id == owner.id,
                                                                        MemberApplication.state == "pending"))
            if pending is None:
                p = owner_push(owner, f"【会员升级提醒】您已满足{e.target}会员升级条件"
                                      f"（{'、'.join({'spend': '累计消费', 'tenure': '居住年限'}[b] for b in e.met)}）。"
                                      f"回复「申请升级」即可提交申请。", now,
                               dedup_key=f"member:{owner.id}:eligible:{owner.tier}:{owner.tier_since}:{e.target}",
                               source=f"member:{owner.id}")
                pushes += [p] if p else []
    session.flush()
    return pushes
