"""The one clock engine (handlers/clocks/): a ticket's, a member service's and a
consultation's clock start through the same API, sit in the same table, are
fired by the same scheduler job at the right minute, and each miss is recorded
once. Plus the policy format's checks (errors name file, entry and field)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from ground.clock import CST
from handlers.message import Context, Message
from handlers.route_result import RouteResult

T0 = datetime(2026, 9, 15, 9, 0, tzinfo=CST)


def _start_one_of_each(s) -> dict[str, str]:
    """An urgent repair (O10/O5), a booking (O2 review), a consultation (O1)."""
    from handlers import registry
    from handlers.consultations.core import handoff
    from handlers.dispatch import handle
    from store.models import Owner

    registry.get_intent_handler("complaint")(
        Context(s, T0), Message(channel="mp", sender="o_wang", chat="private", text="家里水管爆了，到处是水", role="owner"),
        RouteResult(intent="complaint", priority="urgent", category="plumbing"))
    for text in ("预约家电维修明天下午三点", "确认"):
        handle(Context(s, T0), Message(channel="mp", sender="o_li", chat="private", text=text))
    liu = s.scalar(select(Owner).where(Owner.openid == "o_liu"))
    handoff(s, Message(channel="mp", sender="o_liu", text="请问小区附近有没有好的钢琴老师推荐"), liu, T0)
    s.flush()
    return {"ticket": "ticket:1", "booking": "booking:1", "consultation": "consultation:1:1"}


def _scheduler_minute(frozen_clock, at: datetime) -> dict:
    """What the scheduler's `deadlines` job does at `at` (the one job for every clock)."""
    from scheduler import tasks

    frozen_clock.set(at)
    return tasks.run_capability_job("deadlines")


def test_a_ticket_a_service_and_a_consultation_go_through_the_same_engine(demo, frozen_clock):
    from store.db import session_scope
    from store.models import AuditLog, Clock, OutboxMessage, TicketEvent

    with session_scope() as s:
        subjects = _start_one_of_each(s)
    with session_scope() as s:
        rows = {(c.subject, c.clock): c for c in s.scalars(select(Clock))}
        # One table, three kinds, all started by the same engine with their policies' deadlines.
        assert {(c.family, c.subject, c.clock, c.rule) for c in rows.values()} == {
            ("ticket", "ticket:1", "accept", "O10"), ("ticket", "ticket:1", "on_site", "O5"),
            ("service", "booking:1", "O2_review", "O2"), ("service", "consultation:1:1", "O1", "O1")}
        assert rows[("ticket:1", "on_site")].due_at == T0 + timedelta(minutes=15)
        assert rows[("ticket:1", "on_site")].warn_at == T0 + timedelta(minutes=10)
        assert rows[("booking:1", "O2_review")].due_at == T0 + timedelta(hours=2)
        assert rows[("consultation:1:1", "O1")].due_at == T0 + timedelta(minutes=10)

    def sent_to(minute: int) -> list[tuple[str, str]]:
        with session_scope() as s:
            return [(o.recipient, o.source or "") for o in s.scalars(
                select(OutboxMessage).where(OutboxMessage.created_at == T0 + timedelta(minutes=minute)))]

    assert _scheduler_minute(frozen_clock, T0 + timedelta(minutes=4, seconds=59))["pushes"] == 0
    # 5 min: the ticket's accept clock (O10) breaks: the card goes round / up.
    assert _scheduler_minute(frozen_clock, T0 + timedelta(minutes=5))["pushes"] == 1
    # 10 min: the consultation's O1 breaks (assignee + supervisor told), the ticket's O5 warns,
    # and the accept clock takes its next step -- in one run of the one job.
    res = _scheduler_minute(frozen_clock, T0 + timedelta(minutes=10))
    assert res["pushes"] >= 3
    assert _scheduler_minute(frozen_clock, T0 + timedelta(minutes=10))["pushes"] == 0  # idempotent
    sources = {src for _, src in sent_to(10)}
    assert "clock:consultation:1:1" in sources and "ticket:1" in sources
    # 2 h: the booking's review clock (O2) breaks.
    _scheduler_minute(frozen_clock, T0 + timedelta(hours=1, minutes=59))
    assert not [x for x in sent_to(119) if x[1] == "clock:booking:1"]
    _scheduler_minute(frozen_clock, T0 + timedelta(hours=2))
    assert any(src == "clock:booking:1" and "zhuguan_chen" in to for to, src in sent_to(120))

    with session_scope() as s:
        c = {(r.subject, r.clock): r for r in s.scalars(select(Clock))}
        for key in (("ticket:1", "accept"), ("ticket:1", "on_site"), ("booking:1", "O2_review"),
                    ("consultation:1:1", "O1")):
            assert c[key].state == "breached" and c[key].breached_at == c[key].due_at, key
        # Each miss recorded once, where its family keeps its story.
        breaches = [e.detail["clock"] for e in s.scalars(select(TicketEvent).where(TicketEvent.action == "clock_breached"))]
        assert sorted(breaches) == ["accept", "on_site"]
        audited = s.execute(select(AuditLog.target, func.count()).where(AuditLog.action == "clock_breached")
                            .group_by(AuditLog.target)).all()
        assert dict(audited) == {subjects["booking"]: 1, subjects["consultation"]: 1}


def test_stopping_is_the_same_call_for_every_kind(demo, session, frozen_clock):
    from handlers import clocks
    from store.models import Clock

    _start_one_of_each(session)
    late = T0 + timedelta(minutes=16)
    clocks.check_due(session, late)
    for subject, clock in (("ticket:1", "on_site"), ("booking:1", "O2_review"), ("consultation:1:1", "O1")):
        clocks.stop_named(session, subject, clock, late, by="test")
    states = {(c.subject, c.clock): c.state for c in session.scalars(select(Clock))}
    assert states[("ticket:1", "on_site")] == "late"  # after its deadline (the ticket's word)
    assert states[("consultation:1:1", "O1")] == "breached_met"  # after its deadline (the service's word)
    assert states[("booking:1", "O2_review")] == "met"  # in time
    assert clocks.check_due(session, late + timedelta(hours=3), families=("service",)) == []  # stopped: silent


def test_a_family_registers_once():
    from handlers.clocks import engine
    from handlers.tickets.clock_family import FAMILY

    class Impostor:
        name = FAMILY.name

    assert engine.register_family(FAMILY) is FAMILY  # the same one again: harmless
    with pytest.raises(ValueError, match="registered twice"):
        engine.register_family(Impostor())


def test_the_policy_format_names_file_entry_and_field(tmp_path):
    from handlers.clocks import PolicyError
    from handlers.membership import notify
    from handlers.tickets.policy import load_policy

    text = notify.CLOCKS_FILE.read_text(encoding="utf-8")
    bad = tmp_path / "member_clocks.yaml"
    bad.write_text(text.replace("to: [manager]", "to: [director]"), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"member_clocks.yaml: clocks\[0\] \(O1\).escalation\[1\]: field to: unknown 'director'"):
        notify.service_policies(bad)
    bad.write_text(text.replace("    minutes: 10\n", "    minutes: 10\n    hours: 1\n"), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"clocks\[0\] \(O1\): unknown field\(s\) hours"):
        notify.service_policies(bad)
    bad.write_text(text.replace("stop: answered", "stop: replied"), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"clocks\[0\] \(O1\): field start/stop: unknown event 'replied'"):
        notify.service_policies(bad)
    tickets = tmp_path / "clocks.yaml"
    tickets.write_text(load_policy.__globals__["CLOCKS_FILE"].read_text(encoding="utf-8")
                       .replace("minutes: 15,", "minutes: 15, working_days: 1,"), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"clocks.yaml: classes.urgent.clocks\[1\] \(on_site\): exactly one of"):
        load_policy(tickets)


def test_every_clock_policy_has_its_rule_and_a_deadline():
    """RULES.md O1-O11 are deadline policies in the one format (O12-O19 are its recurring
    policies, tests/test_calendar_clocks.py; O20 is the ticket's story)."""
    from bot.console import labels
    from handlers.membership.notify import service_policies
    from handlers.tickets.policy import policy

    p = policy()
    ticket_rules = {c.rule for cls in p.classes.values() for c in cls.clocks}
    ticket_rules |= {c.rule for cs in p.kinds.values() for c in cs} | {c.rule for c in p.all}
    assert ticket_rules == {"O4", "O5", "O6", "O7", "O9", "O10", "O11"}
    assert {c.rule for c in service_policies().values()} == {"O1", "O2", "O3"}
    assert service_policies()["O1"].due(T0) == T0 + timedelta(minutes=10)
    assert labels.missing_clock_names() == []  # every clock has a short name on the console


def _ticket_policies():
    from handlers.tickets.policy import policy

    p = policy()
    for prio, cls in p.classes.items():
        for spec in cls.clocks:
            yield prio, "repair", spec
    for spec in p.kinds["complaint"]:
        yield "general", "complaint", spec
    for spec in p.kinds["home_repair"]:
        yield "general", "repair", spec
    for spec in p.all:
        yield "important", "repair", spec


def test_every_clock_policy_starts_warns_breaks_once_and_escalates_on_time(demo, session):
    """Table-driven over every policy of both files: started (the row and its deadline),
    warned at `warn_before`, broken at the deadline (one record), each escalation step
    at its minute, then silent."""
    from handlers import clocks
    from handlers.membership.notify import service_policies
    from store.models import AuditLog, Clock, Ticket, TicketEvent

    cases = [("ticket", prio, kind, spec) for prio, kind, spec in _ticket_policies()]
    cases += [("service", None, None, spec) for spec in service_policies().values()]
    for family, prio, kind, spec in cases:
        if family == "ticket":  # accepted already: a redispatch has nothing to do and falls through
            t = Ticket(kind=kind, priority=prio, category="plumbing", team="repair", content="测试", state="accepted",
                       channel="mp", sender="o_wang", room="1-101", building="1栋", assignee="weixiu_xiaoli")
            session.add(t)
            session.flush()
            subject, fields = f"ticket:{t.id}", {"ticket_id": t.id}
        else:
            subject, fields = f"test:{spec.id}", {"assignee": "kefu_xiaomei", "team": "customer_service"}
        row = clocks.start(session, family, subject, spec, T0, **fields)
        where = f"{family} {spec.id}"
        assert (row.state, row.rule, row.due_at) == ("running", spec.rule, spec.due(T0)), where
        if spec.warn_before:
            warn = row.due_at - timedelta(minutes=spec.warn_before)
            assert clocks.check_due(session, warn - timedelta(seconds=1), families=(family,)) == [], where
            assert clocks.check_due(session, warn, families=(family,)), where
            assert row.warned_at == warn, where
        assert clocks.check_due(session, row.due_at - timedelta(seconds=1), families=(family,)) == [], where
        at = row.due_at
        clocks.check_due(session, at, families=(family,))
        assert row.state == "breached" and row.breached_at == row.due_at, where
        for step in spec.escalation[1:]:
            if row.level >= len(spec.escalation):
                break
            at = at + timedelta(minutes=step.after)
            assert row.next_step_at == at, where
            clocks.check_due(session, at, families=(family,))
        assert row.level == len(spec.escalation) and row.next_step_at is None, where
        assert clocks.check_due(session, at + timedelta(days=30), families=(family,)) == [], where
        if family == "ticket":
            story = [e.action for e in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == row.ticket_id))]
        else:
            story = [a.action for a in session.scalars(select(AuditLog).where(AuditLog.target == subject))]
        assert story.count("clock_breached") == 1, (where, story)
        assert story.count("clock_escalated") == len([s for s in spec.escalation if "redispatch" not in s.to]), \
            (where, story)
    assert session.scalar(select(func.count()).select_from(Clock)) == len(cases)
