"""Bookings in the store: entitlement, capacity and quota (taken with
conditional UPDATEs so concurrent owners cannot overbook), the staff steps
and the O2/O3 clocks they start and stop."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ground.clock import CST
from handlers import clocks, conversation
from handlers.bookings.catalogue import PERIOD_NAMES, Service, catalogue, period_key
from handlers.identity import find_staff
from handlers.membership import rules as R
from handlers.membership.notify import (by_role, card_done, clock_config, owner_push, promise, recipients,
                                        staff_text, task_card, team_members)
from handlers.membership.service import active_suspension, eligibility, gap_text, local_day
from handlers.message import Push
from handlers.privacy import mask_text
from handlers.zh_datetime import When
from store.models import AuditLog, Booking, Owner, QuotaUsage, ServiceCapacity, SpendEntry

ACTIVE = ("requested", "approved", "contacted")


# --- entitlement -----------------------------------------------------------------

def refusal(session: Session, owner: Owner, svc: Service, now: datetime) -> str | None:
    """Why this owner may not book this service (None: they may)."""
    rules = R.load_rules()
    if owner.tier not in svc.tiers:
        lowest = min(svc.tiers, key=rules.rank)
        msg = f"抱歉，「{svc.name}」是{'/'.join(svc.tiers)}会员专享服务，您目前是{owner.tier}会员。"
        e = eligibility(session, owner, local_day(now))
        msg += f"\n升级至{lowest}会员即可享受" + (f"（需先升级为{e.target}）" if e.target and e.target != lowest else "") + "。"
        if e.target:
            msg += "\n" + gap_text(e)
        return msg
    # Suspended benefits (第十条): member-only services are refused; services
    # open to everyone stay bookable at the basic tier's price (see `book`).
    if set(svc.tiers) != set(rules.order):
        sus = active_suspension(session, owner.id, now)
        if sus:
            until = f"至{sus.ends_at.astimezone(CST):%Y年%m月%d日}" if sus.ends_at else ""
            return f"抱歉，您的会员权益暂停中{until}（{sus.reason}），暂不能预约会员专属服务。"
    return None


def quote_text(svc: Service, tier: str) -> str:
    price, d = svc.price_for(tier)
    if svc.price_fen is None:
        return "费用面议" + (f"（{svc.note}）" if svc.note else "")
    if svc.price_fen == 0:
        q = svc.quota.get(tier)
        return f"会员权益，免费（{PERIOD_NAMES[q.per]}{q.count}次）" if q else "免费"
    if d < 1:
        return f"{R.yuan(svc.price_fen)}元，{tier}{round(d * 10, 1):g}折后{R.yuan(price)}元"
    return f"{R.yuan(svc.price_fen)}元" + (f"（{svc.note}）" if svc.note else "")


# --- counters (the concurrency guard) --------------------------------------------------

def _take_capacity(session: Session, svc: Service, day: date) -> bool:
    try:
        with session.begin_nested():
            session.add(ServiceCapacity(service=svc.key, day=day, capacity=svc.capacity, used=0))
    except IntegrityError:
        pass  # the day's row exists already
    res = session.execute(update(ServiceCapacity)
                          .where(ServiceCapacity.service == svc.key, ServiceCapacity.day == day,
                                 ServiceCapacity.used < svc.capacity)
                          .values(used=ServiceCapacity.used + 1, capacity=svc.capacity)
                          .execution_options(synchronize_session=False))
    return res.rowcount == 1


def _release_capacity(session: Session, service: str, day: date) -> None:
    session.execute(update(ServiceCapacity).where(ServiceCapacity.service == service, ServiceCapacity.day == day,
                                                  ServiceCapacity.used > 0)
                    .values(used=ServiceCapacity.used - 1).execution_options(synchronize_session=False))


def _take_quota(session: Session, owner: Owner, svc: Service, day: date) -> tuple[bool, str | None]:
    q = svc.quota.get(owner.tier)
    if q is None:
        return True, None
    key = period_key(q.per, day)
    try:
        with session.begin_nested():
            session.add(QuotaUsage(owner_id=owner.id, service=svc.key, period=key, allowed=q.count, used=0))
    except IntegrityError:
        pass
    res = session.execute(update(QuotaUsage)
                          .where(QuotaUsage.owner_id == owner.id, QuotaUsage.service == svc.key,
                                 QuotaUsage.period == key, QuotaUsage.used < q.count)
                          .values(used=QuotaUsage.used + 1, allowed=q.count)
                          .execution_options(synchronize_session=False))
    return res.rowcount == 1, key


def _release_quota(session: Session, owner_id: int, service: str, key: str | None) -> None:
    if key:
        session.execute(update(QuotaUsage).where(QuotaUsage.owner_id == owner_id, QuotaUsage.service == service,
                                                 QuotaUsage.period == key, QuotaUsage.used > 0)
                        .values(used=QuotaUsage.used - 1).execution_options(synchronize_session=False))


def capacity_left(session: Session, svc: Service, day: date) -> int:
    used = session.scalar(select(ServiceCapacity.used).where(ServiceCapacity.service == svc.key,
                                                             ServiceCapacity.day == day)) or 0
    return max(0, svc.capacity - used)


# --- times ------------------------------------------------------------------------------------

def start_time(when: When, day: date, svc: Service | None = None) -> datetime:
    """A concrete start: the given clock time, else the part of day's default
    (moved to the service's opening time when it opens later)."""
    if when.has_time:
        return datetime.combine(day, when.start.astimezone(CST).time(), CST)
    defaults = clock_config().get("default_start") or {}
    if when.part and when.part not in defaults:
        t = when.start.astimezone(CST).time()
    else:
        h, m = (int(x) for x in defaults.get(when.part or "", defaults.get("全天", "10:00")).split(":"))
        t = time(h, m)
    if svc is not None and f"{t:%H:%M}" < svc.hours[0]:
        h, m = (int(x) for x in svc.hours[0].split(":"))
        t = time(h, m)
    return datetime.combine(day, t, CST)


def when_problem(when: When, now: datetime) -> str | None:
    horizon = int(clock_config().get("booking_horizon_days", 90))
    if when.end <= now:
        return "这个时间已经过去了，请换一个时间。"
    if when.start.astimezone(CST).date() > local_day(now) + timedelta(days=horizon):
        return f"目前只能预约{horizon}天内的服务，请换一个近一点的时间。"
    return None


def slot_problem(svc: Service, start: datetime, now: datetime) -> str | None:
    """The service's own limits: starting hours and how far ahead to book."""
    s = start.astimezone(CST)
    if not svc.hours[0] <= f"{s:%H:%M}" <= svc.hours[1]:
        return f"「{svc.name}」的服务时间为{svc.hours[0]}-{svc.hours[1]}，请换一个时间。"
    if svc.lead_days and s.date() < local_day(now) + timedelta(days=svc.lead_days):
        return f"「{svc.name}」需至少提前{svc.lead_days}天预订，请选择{(local_day(now) + timedelta(days=svc.lead_days)):%m月%d日}及以后。"
    return None


class _OpenDays:
    """The (day, start) pairs of `when` a booking could take, in order: in the future and
    within the service's own limits. `refused` says why the last day looked at could not be
    taken (None when it could): the reply when no day had room."""

    def __init__(self, when: When, svc: Service, now: datetime) -> None:
        self.when, self.svc, self.now = when, svc, now
        self.refused: str | None = None

    def __iter__(self):
        for day in self.when.days():
            start = start_time(self.when, day, self.svc)
            if start <= self.now:
                continue
            self.refused = slot_problem(self.svc, start, self.now)
            if not self.refused:
                yield day, start


def _task_holders(session: Session, b: Booking, state: str) -> list[str]:
    """Who holds a booking's task in `state`: the service's team once approved, else the reviewers."""
    team = b.team if state in ("approved", "contacted") else clock_config().get("review_team", "customer_service")
    return recipients(team_members(session, team))


# --- booking ------------------------------------------------------------------------------------

def book(session: Session, owner: Owner, svc: Service, when: When, location: str, now: datetime,
         when_text: str | None = None) -> tuple[Booking | None, str, list[Push]]:
    """Take quota and capacity on the first day of `when` that has room, create
    the booking and hand it to staff for review (O2)."""
    why = refusal(session, owner, svc, now)
    if why:
        return None, why, []
    quota_refused = None
    days = _OpenDays(when, svc, now)
    for day, start in days:
        sp = session.begin_nested()
        ok_q, qkey = _take_quota(session, owner, svc, day)
        if not ok_q:
            sp.rollback()
            q = svc.quota[owner.tier]
            quota_refused = (f"您{PERIOD_NAMES[q.per]}的「{svc.name}」次数（{q.count}次）已用完"
                             f"（{qkey}），请选择下一个周期的时间。")
            continue
        if not _take_capacity(session, svc, day):
            sp.rollback()
            continue
        sp.commit()
        price_tier = R.load_rules().default_tier if active_suspension(session, owner.id, now) else owner.tier
        price, discount = svc.price_for(price_tier)
        b = Booking(owner_id=owner.id, service=svc.key, day=day, start_at=start,
                    end_at=start + timedelta(minutes=svc.duration_minutes), when_text=when_text,
                    location=location, tier=owner.tier, price_fen=price, discount=discount, quota_key=qkey,
                    team=svc.team)
        session.add(b)
        session.flush()
        return b, submitted_text(b, svc), review_task(session, b, svc, owner, now)
    if quota_refused:
        return None, quota_refused, []
    if days.refused:
        return None, days.refused, []
    nxt = next_free_day(session, svc, when.days()[-1] + timedelta(days=1))
    return None, (f"抱歉，「{svc.name}」{when.describe()}已约满。"
                  + (f"最近可约：{nxt.month}月{nxt.day}日，告诉我「{nxt.month}月{nxt.day}日」即可。" if nxt else "")), []


def next_free_day(session: Session, svc: Service, start: date, days: int = 14) -> date | None:
    for i in range(days):
        d = start + timedelta(days=i)
        if capacity_left(session, svc, d) > 0:
            return d
    return None


def fmt_dt(dt: datetime) -> str:
    """9月16日(周三) 15:00, as owners read it."""
    s = dt.astimezone(CST)
    return f"{s.month}月{s.day}日(周{'一二三四五六日'[s.weekday()]}) {s:%H:%M}"


def describe(b: Booking, svc: Service | None = None) -> str:
    svc = svc or catalogue().get(b.service)
    return f"B{b.id} {svc.name if svc else b.service} {fmt_dt(b.start_at)} @{b.location}"


def submitted_text(b: Booking, svc: Service) -> str:
    return (f"预约已提交（编号 B{b.id}）：{svc.name}，{fmt_dt(b.start_at)}，{b.location}。"
            f"工作人员将在{promise('O2_review')}审核，审核通过后{promise('O2_contact')}与您联系确认细节。"
            "回复「取消预约」可取消。")


def review_task(session: Session, b: Booking, svc: Service, owner: Owner, now: datetime) -> list[Push]:
    team = clock_config().get("review_team", "customer_service")
    to = recipients(team_members(session, team))
    clocks.start(session, "service", f"booking:{b.id}", "O2_review", now, owner_id=owner.id, team=team, assignee=to,
                detail={"title": f"预约审核 B{b.id} {svc.name}（{owner.name} {owner.room or ''}）"})
    if not to:
        return []
    price = "面议" if b.price_fen is None else f"{R.yuan(b.price_fen)}元"
    return [task_card(to, f"booking-{b.id}-review", f"会员服务预约 B{b.id}", f"请在{promise('O2_review')}审核（第十二条）",
                      [("业主", owner.name), ("房号", owner.room or "-"), ("等级", owner.tier), ("服务", svc.name),
                       ("时间", f"{b.start_at.astimezone(CST):%m-%d %H:%M}"), ("地点", b.location), ("费用", price)],
                      [("通过", f"booking:approve:{b.id}"), ("驳回", f"booking:reject:{b.id}")],
                      dedup_key=f"booking:{b.id}:review-card", source=f"booking:{b.id}")]


def cancel(session: Session, b: Booking, now: datetime, by: str) -> list[Push]:
    """Give the slot and the entitlement back; tell whoever holds the task."""
    prior = b.state
    b.state, b.cancelled_at = "cancelled", now
    _release_capacity(session, b.service, b.day)
    _release_quota(session, b.owner_id, b.service, b.quota_key)
    clocks.cancel(session, f"booking:{b.id}", now, "booking cancelled")
    session.add(AuditLog(actor=by, action="booking_cancel", target=f"booking:{b.id}", detail={"from": prior}))
    session.flush()
    to = _task_holders(session, b, prior)
    return [staff_text(to, f"【预约取消】{describe(b)} 已由业主取消。", f"booking:{b.id}:cancelled", f"booking:{b.id}")] if to else []


def reschedule(session: Session, b: Booking, when: When, now: datetime, by: str) -> tuple[bool, str, list[Push]]:
    """Move a booking: the new day's capacity (and period's quota) is taken
    before the old one is given back, so a failed move keeps the old slot."""
    svc = catalogue()[b.service]
    owner = b.owner
    problem = when_problem(when, now)
    if problem:
        return False, problem, []
    days = _OpenDays(when, svc, now)
    for day, start in days:
        sp = session.begin_nested()
        same_day = day == b.day
        new_qkey = b.quota_key
        if b.quota_key and period_key(svc.quota[b.tier].per, day) != b.quota_key:
            ok_q, new_qkey = _take_quota(session, owner, svc, day)
            if not ok_q:
                sp.rollback()
                continue
        if not same_day and not _take_capacity(session, svc, day):
            sp.rollback()
            continue
        sp.commit()
        if not same_day:
            _release_capacity(session, b.service, b.day)
        if new_qkey != b.quota_key:
            _release_quota(session, b.owner_id, b.service, b.quota_key)
        old = b.start_at
        b.day, b.start_at, b.end_at, b.quota_key = day, start, start + timedelta(minutes=svc.duration_minutes), new_qkey
        session.add(AuditLog(actor=by, action="booking_reschedule", target=f"booking:{b.id}",
                             detail={"from": old.isoformat(), "to": start.isoformat()}))
        session.flush()
        to = _task_holders(session, b, b.state)
        pushes = [staff_text(to, f"【预约改期】{describe(b, svc)}（原 {old.astimezone(CST):%m-%d %H:%M}）。",
                             f"booking:{b.id}:moved:{int(start.timestamp())}", f"booking:{b.id}")] if to else []
        return True, f"已改期：{describe(b, svc)}。", pushes
    if days.refused:
        return False, days.refused + "原预约保持不变。", []
    nxt = next_free_day(session, svc, when.days()[-1] + timedelta(days=1))
    return False, (f"抱歉，{when.describe()}「{svc.name}」已约满或次数已用完，原预约保持不变。"
                   + (f"最近可约：{nxt.month}月{nxt.day}日。" if nxt else "")), []


def active_bookings(session: Session, owner: Owner) -> list[Booking]:
    return list(session.scalars(select(Booking).where(Booking.owner_id == owner.id, Booking.state.in_(ACTIVE))
                                .order_by(Booking.start_at)))


# --- staff steps (card clicks) ------------------------------------------------------------------

def staff_action(session: Session, action: str, booking_id: int, staff_userid: str, now: datetime,
                 response_code: str | None = None) -> tuple[str, list[Push]]:
    """A staff member's click on a booking card (approve / reject / contacted / done):
    the reply to the clicker and the pushes (owner, next holders, the card turned done)."""
    b = session.get(Booking, booking_id)
    if b is None:
        return f"没有找到预约 B{booking_id}。", []
    step = _STAFF_STEPS.get(action)
    if step is None:
        return f"未知操作 {action}。", []
    if b.state not in step.allowed:
        return f"预约 B{b.id} 当前状态为 {b.state}，不能{step.label}。", []
    session.add(AuditLog(actor=staff_userid, action=f"booking_{action}", target=f"booking:{b.id}"))
    done_card = card_done(response_code, _card_holders(session, action, b, staff_userid) or staff_userid,
                          step.label if action == "done" else f"{_staff_name(session, staff_userid)}{step.label}")
    pushes = step.run(session, b, catalogue().get(b.service), staff_userid, now, response_code)
    if done_card:
        pushes.append(done_card)
    session.flush()
    return f"B{b.id} {step.label}。", pushes


def _card_holders(session: Session, action: str, b: Booking, staff_userid: str) -> str:
    """Who holds the card being clicked: the review team (approve / reject), the delivery
    team (contacted), the one who clicked (done)."""
    if action in ("approve", "reject"):
        return recipients(team_members(session, clock_config().get("review_team", "customer_service")))
    if action == "contacted":
        return recipients(team_members(session, b.team))
    return staff_userid


def _approve(session: Session, b: Booking, svc: Service, staff_userid: str, now: datetime,
             response_code: str | None) -> list[Push]:
    """Reviewed: O2's review met, O2's contact clock starts, the team gets the task card."""
    owner, subject = b.owner, f"booking:{b.id}"
    b.state, b.reviewed_by, b.approved_at = "approved", staff_userid, now
    clocks.stop_named(session, subject, "O2_review", now, by=staff_userid)
    to = recipients(team_members(session, b.team))
    clocks.start(session, "service", subject, "O2_contact", now, owner_id=owner.id, team=b.team, assignee=to,
                 detail={"title": f"联系业主确认 B{b.id} {svc.name}（{owner.name}）"})
    p = owner_push(owner, f"您的预约 {describe(b, svc)} 已审核通过，服务人员将在{promise('O2_contact')}与您联系确认时间和地点。",
                   now, dedup_key=f"{subject}:approved", source=subject)
    pushes = [p] if p else []
    if to:
        pushes.append(task_card(to, f"booking-{b.id}-deliver", f"会员服务 B{b.id}：请{promise('O2_contact')}联系业主",
                                "确认时间地点（第十二条）",
                                # the number masked; 查看电话 gives it, logged (handlers/phone_reveal.py)
                                [("业主", owner.name), ("电话", mask_text(owner.phone) or "-"), ("服务", svc.name),
                                 ("时间", f"{b.start_at.astimezone(CST):%m-%d %H:%M}"), ("地点", b.location)],
                                [("已联系业主", f"booking:contacted:{b.id}"), ("服务完成", f"booking:done:{b.id}"),
                                 ("查看电话", f"phone:B{b.id}")],
                                dedup_key=f"{subject}:deliver-card", source=subject))
    return pushes


def _reject(session: Session, b: Booking, svc: Service, staff_userid: str, now: datetime,
            response_code: str | None) -> list[Push]:
    """Refused: the day's place and the owner's quota are given back."""
    subject = f"booking:{b.id}"
    b.state, b.reviewed_by = "rejected", staff_userid
    clocks.stop_named(session, subject, "O2_review", now, by=staff_userid)
    _release_capacity(session, b.service, b.day)
    _release_quota(session, b.owner_id, b.service, b.quota_key)
    p = owner_push(b.owner, f"抱歉，您的预约 {describe(b, svc)} 未通过审核，本次不占用次数。如有疑问请回复「人工」。",
                   now, dedup_key=f"{subject}:rejected", source=subject)
    return [p] if p else []


def _contacted(session: Session, b: Booking, svc: Service, staff_userid: str, now: datetime,
               response_code: str | None) -> list[Push]:
    """The owner was called: O2's contact met; a card clicked gets a fresh one for 服务完成."""
    subject = f"booking:{b.id}"
    b.state, b.contacted_at = "contacted", now
    clocks.stop_named(session, subject, "O2_contact", now, by=staff_userid)
    if not response_code:  # the card keeps one button: "服务完成" comes as a fresh card
        return []
    return [task_card(staff_userid, f"booking-{b.id}-done", f"会员服务 B{b.id}：完成后请点击",
                      f"完成后{promise('O3')}反馈业主（第十四条）",
                      [("服务", svc.name), ("时间", f"{b.start_at.astimezone(CST):%m-%d %H:%M}"),
                       ("地点", b.location)],
                      [("服务完成", f"booking:done:{b.id}")],
                      dedup_key=f"{subject}:done-card", source=subject)]


def _done(session: Session, b: Booking, svc: Service, staff_userid: str, now: datetime,
          response_code: str | None) -> list[Push]:
    """Delivered: the spend counts, O3 (feedback) starts, the owner is asked for a rating."""
    owner, subject = b.owner, f"booking:{b.id}"
    if b.state == "approved":
        clocks.stop_named(session, subject, "O2_contact", now, by=staff_userid)
    b.state, b.done_at = "done", now
    if b.price_fen:  # a paid service counts toward the tiers (第九条 1: 购买增值服务)
        session.add(SpendEntry(owner_id=owner.id, amount_fen=b.price_fen, spent_on=local_day(now),
                               category=b.service, note=f"B{b.id}", entered_by=subject))
    key = f"{subject}:feedback"
    clocks.start(session, "service", subject, "O3", now, owner_id=owner.id, team=b.team, assignee=staff_userid,
                 detail={"title": f"服务完成反馈 B{b.id} {svc.name}（{owner.name}）", "outbox_dedup": key})
    p = owner_push(owner, f"您预约的{svc.name}（B{b.id}）已完成。请为本次服务打分：直接回复1-5（5分最满意），"
                          f"也可以写下您的意见，我们会持续改进。", now, dedup_key=key, source=subject)
    _open_rating(session, owner, b, now)
    return [p] if p else []


@dataclass(frozen=True)
class _StaffStep:
    label: str  # what the clicker reads: "B12 已通过。"
    allowed: tuple[str, ...]  # the booking states it may be taken from
    run: Callable[..., list[Push]]


_STAFF_STEPS: dict[str, _StaffStep] = {
    "approve": _StaffStep("已通过", ("requested",), _approve),
    "reject": _StaffStep("已驳回", ("requested",), _reject),
    "contacted": _StaffStep("已联系业主", ("approved",), _contacted),
    "done": _StaffStep("服务已完成", ("approved", "contacted"), _done),
}


RATING_TTL = timedelta(days=3)


def _open_rating(session: Session, owner: Owner, b: Booking, now: datetime) -> None:
    """Let a bare "5" from the owner count as the rating, without cutting into
    an exchange already in progress (a booking, a survey)."""
    if owner.openid and conversation.get(session, owner.openid, "private", now) is None:
        conversation.start(session, owner.openid, "private", "booking_rating", {"booking_id": b.id}, now, ttl=RATING_TTL)


def _staff_name(session: Session, userid: str) -> str:
    st = find_staff(session, userid)
    return st.name if st else userid


def rate(session: Session, owner: Owner, score: int, now: datetime, comment: str | None = None) -> tuple[str, list[Push]]:
    b = session.scalar(select(Booking).where(Booking.owner_id == owner.id, Booking.state == "done",
                                             Booking.rating.is_(None)).order_by(Booking.done_at.desc()))
    if b is None:
        return "目前没有待评价的服务。", []
    b.rating, b.state = score, "rated"
    session.add(AuditLog(actor=owner.openid or str(owner.id), action="booking_rated", target=f"booking:{b.id}",
                         detail={"score": score, "comment": comment}))
    session.flush()
    pushes: list[Push] = []
    if score <= 2:  # a dissatisfied owner is followed up by a supervisor
        sup = by_role(session, "supervisor", b.team)
        if sup:
            pushes.append(staff_text(recipients(sup), f"【差评跟进】{describe(b)} 业主{owner.name}评分{score}，请跟进回访。",
                                     f"booking:{b.id}:lowrating", f"booking:{b.id}"))
    return f"感谢您的评价（{score}分）！" + ("我们会尽快联系您改进。" if score <= 2 else ""), pushes
