"""Read-side queries the console and the API share."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.console import labels
from bot.console.labels import word
from bot.outbound import outbox
from handlers import clocks, privacy, scope
from handlers.bookings import ops
from handlers.clocks import calendar
from handlers.membership.service import review_application as review
from handlers.tickets import core
from store.models import (Booking, CalendarClock, Delivery, MemberApplication, ServiceClock, Staff, Ticket,
                          TicketClock, TicketEvent)

OPEN_TICKET_STATES = ("waiting_home", "open", "accepted", "on_the_way", "on_site", "reopened", "completed")
PRIORITIES = ("urgent", "important", "general")
PRIORITY_LABELS = {"urgent": "紧急", "important": "重要", "general": "一般"}


# --- rows as JSON (the API and the console's JSON views) -------------------------------------

def iso(v: Any) -> Any:
    """JSON-friendly value: datetimes as ISO strings in UTC, dates as ISO dates."""
    if isinstance(v, datetime):
        # Always UTC out, whatever the object carried in (a row not yet re-read keeps its input zone).
        return v.astimezone(timezone.utc).isoformat() if v.tzinfo else v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return v


def where_given(stmt: Any, *filters: tuple[Any, Any]) -> Any:
    """`stmt` narrowed by each (column, value) whose value was given (a query's optional filters)."""
    for column, value in filters:
        if value:
            stmt = stmt.where(column == value)
    return stmt


def row_dict(obj: Any, fields: list[str] | None = None) -> dict:
    """A model row as JSON; by default every column."""
    cols = fields or [c.key for c in obj.__table__.columns]
    return {c: iso(getattr(obj, c, None)) for c in cols}


# --- the Today page ---------------------------------------------------------------------------

@dataclass
class Item:
    """One line on the Today page."""

    label: str
    when: str
    id: int | None = None
    text: str = ""
    count: int = 0
    kind: str = ""
    clocks: list = field(default_factory=list)  # running service clocks (chips)


# --- clocks -----------------------------------------------------------------------------

@dataclass
class ClockView:
    id: int
    name: str  # the clock's id in clocks.yaml (API); `title` is what people read
    rule: str
    state: str
    due_at: datetime
    color: str  # green / amber / red / grey
    remaining: str  # 剩余23小时 / 超时1分钟 / 按时完成
    title: str = ""

    @property
    def label(self) -> str:
        return {"red": "已超时", "amber": "即将超时", "green": "计时中", "grey": "已结束"}[self.color]

    @property
    def chip(self) -> str:
        """What the chip says: "首次回复 剩余23小时"."""
        return f"{self.title} {self.remaining}"


ENDED_WORDS = {"met": "按时完成", "late": "超时后完成", "cancelled": "已停止", "breached_met": "超时后完成"}


def clock_color(c, now: datetime) -> str:
    """red = broken, amber = about to break (thresholds in display_labels.yaml), green = time left."""
    return labels.clock_color(c.state, c.started_at, c.due_at, c.warn_at, now)


def human_delta(delta: timedelta) -> str:
    return ("超时" if delta.total_seconds() < 0 else "剩余") + labels.human_span(delta)


def clock_views(session: Session, ticket_ids: list[int], now: datetime, active_only: bool = True) -> dict[int, list[ClockView]]:
    """Per ticket, one view per clock (the latest round of it), soonest deadline first."""
    out: dict[int, list[ClockView]] = {i: [] for i in ticket_ids}
    if not ticket_ids:
        return out
    stmt = select(TicketClock).where(TicketClock.ticket_id.in_(ticket_ids)).order_by(TicketClock.round, TicketClock.id)
    if active_only:
        stmt = stmt.where(TicketClock.state.in_(("running", "breached")))
    latest: dict[tuple[int, str], object] = {}
    for c in session.scalars(stmt):  # a reopened ticket runs a clock again: the later round wins
        latest[(c.ticket_id, c.clock)] = c
    for c in sorted(latest.values(), key=lambda c: (c.state not in ("running", "breached"), c.due_at)):
        color = clock_color(c, now)
        left = labels.time_left(c.due_at, now) if color != "grey" else ENDED_WORDS.get(c.state, "已结束")
        out[c.ticket_id].append(ClockView(c.id, c.clock, c.rule, c.state, c.due_at, color, left,
                                          labels.clock_name(c.clock)))
    return out


def service_clock_views(session: Session, subjects: list[str], now: datetime) -> dict[str, list[ClockView]]:
    """The running service clocks (审核 / 联系业主 / 服务反馈) of bookings and applications, per subject."""
    out: dict[str, list[ClockView]] = {k: [] for k in subjects}
    if not subjects:
        return out
    for c in session.scalars(select(ServiceClock).where(ServiceClock.subject.in_(subjects),
                                                        ServiceClock.state.in_(("running", "breached")))
                             .order_by(ServiceClock.due_at)):
        color = labels.clock_color(c.state, c.started_at, c.due_at, None, now)
        out[c.subject].append(ClockView(c.id, c.clock, c.clock, c.state, c.due_at, color,
                                        labels.time_left(c.due_at, now), labels.clock_name(c.clock)))
    return out


def next_due(clocks: list[ClockView]) -> datetime | None:
    """The deadline that matters first (running or broken clocks only)."""
    dues = [c.due_at for c in clocks if c.color != "grey"]
    return min(dues) if dues else None


def due_first(rows: list, clocks: dict[int, list[ClockView]]) -> list:
    """Tickets with the nearest (or most overdue) deadline first, then those
    without a running clock, newest first."""
    far = datetime.max.replace(tzinfo=timezone.utc)
    return sorted(rows, key=lambda t: (next_due(clocks[t.id]) or far, -t.id))


def worst(colors: list[str]) -> str:
    for c in ("red", "amber", "green"):
        if c in colors:
            return c
    return "grey"


# --- tickets ------------------------------------------------------------------------------

def viewer():
    """The request's scope (handlers/scope.py), computed once per request from g.principal."""
    from flask import g

    v = g.get("scope_viewer")
    if v is None:
        v = g.scope_viewer = scope.for_principal(g.db, g.principal)
    return v


def ticket_query(filters: dict, viewer=None):
    """A select over tickets with the console/API filters applied, limited to what
    `viewer` may see (handlers/scope.py)."""
    stmt = select(Ticket)
    if viewer is not None:
        stmt = scope.tickets(stmt, viewer)
    state = filters.get("state")
    if state == "open":
        stmt = stmt.where(Ticket.state.in_(OPEN_TICKET_STATES))
    elif state:
        stmt = stmt.where(Ticket.state == state)
    for f in ("priority", "category", "kind", "building", "assignee", "team", "room"):
        if filters.get(f):
            stmt = stmt.where(getattr(Ticket, f) == filters[f])
    if filters.get("q"):
        stmt = stmt.where(Ticket.content.like(scope.like_contains(filters["q"]), escape=scope.LIKE_ESCAPE))
    return stmt.order_by(Ticket.id.desc())


def late_ticket_ids(session: Session, now: datetime) -> set[int]:
    """Tickets with a broken clock still running (the 'late' filter)."""
    rows = session.scalars(select(TicketClock).where(TicketClock.state.in_(("running", "breached"))))
    return {c.ticket_id for c in rows if clock_color(c, now) == "red"}


def ticket_dict(t, clocks: list[ClockView] | None = None, viewer=None) -> dict:
    """The ticket as JSON; numbers masked unless `viewer` may see them in full."""
    if viewer is not None:
        t = privacy.ticket_view(viewer, t)
    d = row_dict(t, ["id", "kind", "priority", "category", "team", "content", "state", "channel", "room",
                     "building", "contact_name", "assignee", "created_at", "accepted_at", "on_site_at",
                     "completed_at", "closed_at", "survey_score", "reopen_count"])
    d["number"] = f"T{t.id}"
    if clocks is not None:
        d["clocks"] = [{"clock": c.name, "rule": c.rule, "state": c.state, "due_at": c.due_at.isoformat(),
                        "status": c.color} for c in clocks]
        d["status"] = worst([c.color for c in clocks])
    return d


def ticket_events(session: Session, ticket_id: int) -> list:
    return list(session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
                                .order_by(TicketEvent.at, TicketEvent.id)))


class ReassignError(ValueError):
    """The ticket cannot be reassigned now (closed, completed...)."""


def reassign_ticket(session: Session, ticket, to_userid: str, by: str, reason: str | None, now: datetime) -> None:
    """Hand a ticket to someone else from the console, as a recorded ticket event.

    O10 (首问负责制) makes the first taker the owner; a supervisor moving it is
    the sanctioned exception, so it is an explicit "transferred" event saying
    who and why. The tickets capability's own primitives are used (event,
    clocks, the new holder's work card, the owner's progress message O8), so a
    console reassignment behaves like 「转派 T12 姓名」 in WeCom.
    """
    if ticket.state in ("closed", "completed"):
        raise ReassignError(f"T{ticket.id} is {ticket.state} and cannot be reassigned")

    target = session.scalar(select(Staff).where(Staff.userid == to_userid))
    prev = ticket.assignee
    ticket.assignee = to_userid
    pushes = []
    if ticket.state == "open":  # nobody had taken it: the reassignment is the acceptance
        ticket.state, ticket.accepted_at = "accepted", now
        core.fire(session, ticket, "accepted", by, now, assigned_to=to_userid)
    core.record(session, ticket, by, "transferred", now, frm=prev, to=to_userid, reason=reason, via="console")
    # As 「转派」 does: the earlier cards are settled, so nobody acts on a stale one.
    pushes += core.close_cards(session, ticket, f"已转派{target.name if target else to_userid}")
    pushes.append(core.work_card(session, ticket, to_userid, f"工单{ticket.number}已转派给您"))
    pushes += core.owner_push(session, ticket, f"您的工单{ticket.number}已转交{target.name if target else to_userid}跟进。",
                              f"transfer:{ticket.version}")
    if prev and prev != to_userid:
        pushes.append(core.staff_text(prev, f"工单{ticket.number}已转派给{target.name if target else to_userid}。",
                                      None, ticket))
    deliver(session, pushes, now)


def deliver(session: Session, pushes: list, now: datetime) -> None:
    """Record a capability's pushes in the outbox and ask a worker to send them
    once this request's transaction has committed (before that a worker could
    not see the rows); if Redis is down the sweeper picks them up."""
    from sqlalchemy import event

    rows = [outbox.add(session, p, now) for p in pushes]
    session.flush()
    ids = [r.id for r in rows if r is not None]
    if ids:
        event.listen(session, "after_commit", lambda _s: outbox.queue_send(ids), once=True)


class DecisionError(ValueError):
    """A booking or application decision that the record's state does not allow."""


def booking_action(session: Session, booking_id: int, action: str, actor: str, now: datetime) -> str:
    """approve / reject / contacted / done, through the bookings capability (its
    clocks O2/O3, cards and owner messages); returns its message."""
    b = session.get(Booking, booking_id)
    before = b.state
    text, pushes = ops.staff_action(session, action, booking_id, actor, now)
    if b.state == before:
        raise DecisionError(text)
    deliver(session, pushes, now)
    return text


def review_application(session: Session, app_id: int, approve: bool, actor: str, now: datetime,
                       note: str | None = None) -> str:
    app = session.get(MemberApplication, app_id)
    if app.state != "pending":
        raise DecisionError(f"application M{app_id} is already {app.state}")
    text, pushes = review(session, app_id, approve, actor, now, note)
    deliver(session, pushes, now)
    return text


# --- ticket actions from the console ---------------------------------------------------------

class ActionError(ValueError):
    """The action cannot be done by this person on this ticket now (the message says why)."""


STAFF_ACTIONS = ("accept", "progress", "complete")


def ticket_action(session: Session, ticket, action: str, userid: str, note: str, now: datetime) -> str:
    """接单 / 进度 / 完成 from the ticket page: the same functions as the WeCom
    commands and card buttons (handlers.tickets.core), so the clocks, the owner's
    messages and the cards are what「接单 T12」would have produced. Returns the
    message for the person; raises ActionError with it when refused."""
    if action == "accept":
        res = core.accept(session, ticket.id, userid, now)
    elif action == "progress":
        res = core.progress(session, ticket.id, userid, now, note)
    elif action == "complete":
        res = core.complete(session, ticket.id, userid, now, note)
    else:
        raise ActionError("没有这个操作")
    if not res.ok:
        deliver(session, res.pushes, now)  # e.g. a stale card set to "已由老周接单"
        raise ActionError(res.message)
    deliver(session, res.pushes, now)
    return res.message


def close_ticket(session: Session, ticket, by: str, reason: str, now: datetime) -> str:
    """A supervisor closes a ticket from the console (a duplicate, a withdrawn
    request, a completed one the owner never rated): recorded as a "closed"
    event with the reason, its running clocks stopped (a closed ticket must not
    escalate), its open cards closed, and the owner told."""
    if ticket.state == "closed":
        raise ActionError(f"工单T{ticket.id}已办结")
    if not reason:
        raise ActionError("请写明办结原因")

    ticket.state, ticket.closed_at = "closed", now
    core.fire(session, ticket, "closed", by, now, reason=reason, via="console")
    clocks.cancel(session, f"ticket:{ticket.id}", now, "ticket closed")
    pushes = core.close_cards(session, ticket, "已办结")
    pushes += core.owner_push(session, ticket, f"您的工单{ticket.number}已办结：{reason}", "closed:console")
    deliver(session, pushes, now)
    return f"工单{ticket.number}已办结"


# --- campaigns ----------------------------------------------------------------------------

def delivery_progress(session, campaign_ids: list[int]) -> dict[int, dict]:
    out: dict[int, dict] = {i: {} for i in campaign_ids}
    if not campaign_ids:
        return out
    for cid, state, n in session.execute(select(Delivery.campaign_id, Delivery.state, func.count())
                                         .where(Delivery.campaign_id.in_(campaign_ids))
                                         .group_by(Delivery.campaign_id, Delivery.state)):
        out[cid][state] = n
    return out


@dataclass
class ObligationView:
    """A calendar obligation (O12-O19) as the 公告 page lists it."""

    name: str
    audience: str
    next_at: datetime | None  # the soonest occurrence of its running clocks
    last_at: datetime | None  # when it last fired (a community obligation; None for per-subject ones)
    running: int  # its running clocks (1 for the community's; owners in arrears, homes...)
    per_subject: bool


def calendar_obligations(session: Session) -> list[ObligationView]:
    """Every calendar obligation of the clock engine with its next (and last) occurrence."""
    live = {clock: (n, nxt) for clock, n, nxt in session.execute(
        select(CalendarClock.clock, func.count(), func.min(CalendarClock.due_at))
        .where(CalendarClock.state == "running").group_by(CalendarClock.clock))}
    standing = {c.clock: c for c in session.scalars(select(CalendarClock).where(
        CalendarClock.subject == "community", CalendarClock.state == "running"))}
    rows = []
    for pid, spec in calendar.policies().items():
        n, nxt = live.get(pid, (0, None))
        last = (standing[pid].detail or {}).get("last_fired_at") if pid in standing else None
        rows.append(ObligationView(
            name=word("calendar_clocks", pid, spec.title), audience="、".join(word("audiences", t) for t in spec.tell),
            next_at=nxt, last_at=datetime.fromisoformat(last) if last else None, running=n,
            per_subject=spec.start != "installed"))
    far = datetime.max.replace(tzinfo=timezone.utc)
    return sorted(rows, key=lambda r: r.next_at or far)
