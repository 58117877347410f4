"""The calendar obligations of RULES.md (O12-O19) on the one clock engine (issue 15):
recurring policies (handlers/data/calendar_clocks.yaml) whose rows sit in the one
`clocks` table and fire in the engine's one check, each occurrence recorded once.
Every one under a controlled clock: started (its row and first moment), not a
minute early, fired at its minute, recorded, and silent when the check runs again."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ground.clock import CST
from tests.console_support import api  # noqa: F401  (the console fixture)

T0 = datetime(2026, 9, 15, 9, 0, tzinfo=CST)  # the frozen clock's start: a Tuesday


def _at(*parts) -> datetime:
    return datetime(*parts, tzinfo=CST)


# policy: (first moment after T0, its period, the next moment)
COMMUNITY = {
    "complaint_review_daily": (_at(2026, 9, 16, 8, 33), "daily:2026-09-16", _at(2026, 9, 17, 8, 33)),
    "greetings": (_at(2026, 9, 16, 8, 47), "2026-09-16", _at(2026, 9, 17, 8, 47)),
    "survey": (_at(2026, 9, 20, 10, 20), "2026Q3", _at(2026, 12, 20, 10, 20)),
    "complaint_review_weekly": (_at(2026, 9, 21, 8, 43), "weekly:2026-W39", _at(2026, 9, 28, 8, 43)),
    "complaint_review_monthly": (_at(2026, 10, 1, 8, 53), "monthly:2026-10", _at(2026, 11, 1, 8, 53)),
    "bills": (_at(2026, 10, 1, 9, 17), "2026-10", _at(2026, 11, 1, 9, 17)),
    "census": (_at(2026, 10, 5, 9, 40), "2026Q4", _at(2027, 1, 5, 9, 40)),
    "forum": (_at(2026, 11, 10, 10, 25), "2026Q4", _at(2027, 2, 10, 10, 25)),
}


def _records(s, policy: str) -> list:
    from store.models import Reminder

    return [r for r in s.scalars(select(Reminder).order_by(Reminder.id)) if (r.detail or {}).get("clock") == policy]


def _row(s, policy: str, subject: str = "community"):
    from store.models import CalendarClock

    return s.scalar(select(CalendarClock).where(CalendarClock.clock == policy, CalendarClock.subject == subject)
                    .order_by(CalendarClock.round.desc()).limit(1))


def test_every_rule_of_rules_md_is_a_policy_of_the_one_engine():
    from handlers.clocks import calendar
    from handlers.membership.notify import service_policies
    from handlers.tickets.policy import policy

    p = policy()
    deadlines = {c.rule for cls in p.classes.values() for c in cls.clocks} | {c.rule for c in p.all}
    deadlines |= {c.rule for cs in p.kinds.values() for c in cs} | {c.rule for c in service_policies().values()}
    recurring = {c.rule for c in calendar.policies().values()}
    assert recurring == {"O12", "O13", "O14", "O15", "O16", "O17", "O18", "O19"}
    assert not recurring & deadlines
    assert set(COMMUNITY) | {"warranty", "arrears", "birthdays"} == set(calendar.policies())


def test_every_community_obligation_starts_fires_on_its_minute_and_is_recorded_once(demo, session):
    """Table-driven over every standing calendar policy: the check starts its row (due at
    its first moment), it does not fire a minute early, fires at the minute, is recorded
    once, a re-run of the check adds nothing, and the row waits for the next moment."""
    from handlers import clocks
    from store.models import Campaign

    clocks.check_due(session, T0)
    for pid, (first, _, _) in COMMUNITY.items():
        row = _row(session, pid)
        assert (row.family, row.state, row.due_at, row.level) == ("calendar", "running", first, 0), pid
    for pid, (first, period, nxt) in sorted(COMMUNITY.items(), key=lambda kv: kv[1][0]):
        clocks.check_due(session, first - timedelta(minutes=1))
        assert _records(session, pid) == [], pid
        clocks.check_due(session, first)
        [rec] = _records(session, pid)
        row = _row(session, pid)
        assert (rec.rule, rec.subject, rec.period) == (row.rule, "community", period), pid
        assert (row.state, row.due_at, row.level, row.detail["last_period"]) == ("running", nxt, 1, period), pid
        campaigns = session.scalar(select(func.count()).select_from(Campaign))
        assert clocks.check_due(session, first) == [], pid  # the same minute again: nothing
        assert len(_records(session, pid)) == 1 and session.scalar(select(func.count()).select_from(Campaign)) == campaigns
    kinds = dict(session.execute(select(Campaign.dedup_key, Campaign.kind)).all())
    assert kinds == {"O17:2026Q3": "survey", "O14:2026-10": "bill", "O16:2026Q4": "census", "O18:2026Q4": "forum"}


def test_arrears_is_a_clock_per_owner_while_unpaid(demo, session, frozen_clock):
    """O15: the check finds 杨洋 over a month in arrears (paid to 31 Aug: from 1 Oct), starts
    her clock, which fires at 10:07 and every 15 days after, and stops when she pays."""
    from handlers import clocks
    from store.models import Owner, Reminder

    yang = session.scalar(select(Owner).where(Owner.name == "杨洋"))
    clocks.check_due(session, _at(2026, 9, 30, 23, 59))
    assert _row(session, "arrears", f"owner:{yang.id}") is None  # not yet a month
    clocks.check_due(session, _at(2026, 10, 1, 0, 1))
    row = _row(session, "arrears", f"owner:{yang.id}")
    assert (row.state, row.due_at, row.owner_id, row.anchor) == (
        "running", _at(2026, 10, 1, 10, 7), yang.id, date(2026, 10, 1))
    assert clocks.check_due(session, _at(2026, 10, 1, 10, 6)) == []
    pushes = clocks.check_due(session, _at(2026, 10, 1, 10, 7))
    assert sorted(p.recipient for p in pushes if p.source == f"O15:owner:{yang.id}") == ["kefu_xiaomei", "o_yang"]
    assert [p for p in clocks.check_due(session, _at(2026, 10, 1, 10, 7)) if p.source.startswith("O15")] == []
    assert row.due_at == _at(2026, 10, 16, 10, 7) and row.level == 1
    yang.fees_paid_until = date(2026, 12, 31)  # she pays
    assert [p for p in clocks.check_due(session, _at(2026, 10, 16, 10, 7)) if p.source.startswith("O15")] == []
    assert (row.state, row.detail["stopped_by"]) == ("met", "paid")
    periods = [r.period for r in session.scalars(select(Reminder).where(Reminder.rule == "O15",
                                                                          Reminder.subject == f"owner:{yang.id}"))]
    assert periods == ["2026-10-01#0"]


def test_warranty_is_one_reminder_per_home_and_date(demo, session):
    """O12: 2-0601's warranty ends 1 Dec: its clock starts when the month before it is
    near, fires once on 1 Nov at 10:12 and is done; a new end date is a new round."""
    from handlers import clocks
    from store.models import Home

    home = session.scalar(select(Home).where(Home.room == "2-0601"))
    subject = f"home:{home.id}"
    clocks.check_due(session, _at(2026, 10, 31, 9, 0))
    row = _row(session, "warranty", subject)
    assert (row.state, row.due_at, row.anchor) == ("running", _at(2026, 11, 1, 10, 12), date(2026, 12, 1))
    clocks.check_due(session, _at(2026, 11, 1, 10, 11))
    assert _records(session, "warranty") == []
    pushes = [p for p in clocks.check_due(session, _at(2026, 11, 1, 10, 12)) if p.source == f"O12:{subject}"]
    assert [p.recipient for p in pushes] == ["o_zhao"] and row.state == "met"
    clocks.check_due(session, _at(2026, 11, 2, 10, 12))
    assert [r.period for r in _records(session, "warranty") if r.subject == subject] == ["2026-12-01"]
    assert _row(session, "warranty", subject).round == 0  # no second clock for the same date
    home.warranty_until = date(2027, 6, 1)  # extended: reminded again a month before the new end
    clocks.check_due(session, _at(2027, 5, 1, 10, 12))
    again = _row(session, "warranty", subject)
    assert (again.round, again.due_at) == (1, _at(2027, 5, 2, 10, 12))


def test_an_occurrence_recorded_already_is_not_fired_again(demo, session):
    """Two workers, or a check re-run on a stale row: the record is unique (rule, subject,
    period), so the second finds it and sends nothing."""
    from handlers import clocks
    from store.models import Campaign, Reminder

    clocks.check_due(session, T0)
    session.add(Reminder(rule="O14", subject="community", period="2026-10", detail={"clock": "bills"},
                         created_at=T0))
    session.flush()
    clocks.check_due(session, _at(2026, 10, 1, 9, 17))
    assert session.scalar(select(func.count()).select_from(Campaign).where(Campaign.kind == "bill")) == 0
    assert _row(session, "bills").due_at == _at(2026, 11, 1, 9, 17)  # moved on all the same


def test_an_occurrence_found_hours_late_is_skipped_not_sent_late(demo, session):
    """The check did not run for hours (an outage): a festival greeting is not sent days
    late, as the scheduler's misfire grace (one hour) never sent one."""
    from handlers import clocks
    from store.models import Campaign

    clocks.check_due(session, _at(2026, 9, 24, 9, 0))
    assert _row(session, "greetings").due_at == _at(2026, 9, 25, 8, 47)  # 中秋节
    clocks.check_due(session, _at(2026, 9, 25, 9, 40))  # 53 minutes late: still sent
    assert session.scalar(select(Campaign.title).where(Campaign.kind == "greeting")) == "中秋节"
    clocks.check_due(session, _at(2026, 10, 1, 12, 0))  # 国庆节 08:47, found at noon: skipped
    assert session.scalar(select(func.count()).select_from(Campaign).where(Campaign.kind == "greeting")) == 1
    assert _row(session, "greetings").due_at == _at(2026, 10, 2, 8, 47)


@pytest.mark.parametrize("old, new, message", [
    ("does: bills", "does: billz", r"calendar\[3\] \(bills\): field does: unknown action 'billz'"),
    ('calendar: {every: month, day: 1, at: "09:17"}', 'calendar: {every: month, day: 1, at: "9:17"}',
     r"calendar\[3\] \(bills\): field calendar.at: a time like"),
    ('calendar: {every: month, day: 1, at: "09:17"}', 'calendar: {every: fortnight, at: "09:17"}',
     r"calendar\[3\] \(bills\): field calendar.every: day / week / month / quarter / year or 'N days'"),
    ('calendar: {every: month, day: 1, at: "09:17"}', 'calendar: {every: month, day: 32, at: "09:17"}',
     r"calendar\[3\] \(bills\): field calendar.day: a whole number 1-31"),
    ("tell: [home_owners]", "tell: [neighbours]", r"calendar\[0\] \(warranty\): field tell: unknown 'neighbours'"),
    ("start: warranty_ending", "start: installed",
     r"calendar\[0\] \(warranty\): field calendar: a rule counted from a subject's date"),
    ("    does: bills\n", "    does: bills\n    warn_before: 5\n",
     r"calendar\[3\] \(bills\): field warn_before: a recurring \(calendar\) clock has no deadline"),
])
def test_the_calendar_policies_name_file_entry_and_field(tmp_path, old, new, message):
    from handlers.clocks import PolicyError, calendar

    text = calendar.POLICY_FILE.read_text(encoding="utf-8")
    assert old in text
    bad = tmp_path / "calendar_clocks.yaml"
    bad.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"calendar_clocks.yaml: " + message):
        calendar.POLICIES.load(bad)


def test_a_failing_action_is_tried_again_and_harms_nothing_else(demo, session, monkeypatch, tmp_path):
    """An action that fails (here: the bill's text went missing from schedule.yaml) is
    logged and retried at the next check; the obligations beside it fire all the same."""
    from handlers import clocks
    from handlers.schedule.config import SCHEDULE_FILE
    from store.models import Campaign

    clocks.check_due(session, T0)
    broken = tmp_path / "schedule.yaml"
    text = SCHEDULE_FILE.read_text(encoding="utf-8")
    broken.write_text("\n".join(line for line in text.splitlines() if not line.startswith("  bill:")), encoding="utf-8")
    monkeypatch.setenv("GUANJIA_SCHEDULE_FILE", str(broken))
    pushes = clocks.check_due(session, _at(2026, 10, 1, 9, 17))  # the monthly review (08:53) is due too
    assert any(p.source == "tickets:digest" for p in pushes)
    assert _records(session, "bills") == [] and _row(session, "bills").due_at == _at(2026, 10, 1, 9, 17)
    monkeypatch.delenv("GUANJIA_SCHEDULE_FILE")  # the text is back: the next check sends the bill
    clocks.check_due(session, _at(2026, 10, 1, 9, 18))
    assert [r.period for r in _records(session, "bills")] == ["2026-10"]
    assert session.scalar(select(func.count()).select_from(Campaign).where(Campaign.kind == "bill")) == 1


def test_the_announcements_page_lists_the_calendar_obligations(api, frozen_clock):
    """A supervisor sees what the community is sent on the calendar: each obligation by
    name, who is told, when it goes next and when it last went."""
    import re

    from tests.obligations import run_check
    from tests.test_security_scope import login

    run_check()  # 09-15 09:00: the check starts the obligations' clocks
    frozen_clock.set(_at(2026, 9, 16, 8, 33))
    run_check()  # the day's complaint review
    c = api.client
    assert login(c, "supervisor").status_code == 302
    html = c.get("/console/announcements").get_data(as_text=True)
    table = html[html.index('id="calendar-obligations"'):]
    rows = {m.group(1): re.sub(r"<[^>]+>", "|", m.group(2)) for m in re.finditer(r"<tr><td>([^<]+)</td>(.*?)</tr>", table, re.S)}
    assert set(rows) >= {"月度账单", "欠费跟进", "保修到期提醒", "生日祝福", "投诉日报", "季度满意度调查"}
    assert "全体业主" in rows["月度账单"] and "10-01 09:17" in rows["月度账单"]
    assert "09-16 08:33" in rows["投诉日报"] and "09-17 08:33" in rows["投诉日报"]  # last, next
    assert "进行中 0 项" in rows["欠费跟进"] and "进行中 12 项" in rows["生日祝福"]
    assert "业主本人" in rows["生日祝福"] and "客服主管" in rows["投诉日报"]
    assert not re.search(r"\bO1\d\b", table)  # no rule codes on the page


def test_a_birthday_is_a_yearly_clock_per_owner(demo, session):
    """O13: each owner with a birthday on file has a clock due on the birthday at 09:05
    (赵丽, 9 Sep: next year's); it fires on the day, once, and waits for the next year;
    a corrected birthday starts a new round."""
    from handlers import clocks
    from store.models import Owner

    zhao = session.scalar(select(Owner).where(Owner.name == "赵丽"))  # born 1965-09-09
    wang = session.scalar(select(Owner).where(Owner.name == "王建国"))  # born 1968-05-12
    clocks.check_due(session, T0)
    row = _row(session, "birthdays", f"owner:{zhao.id}")
    assert (row.state, row.due_at, row.anchor, row.owner_id) == ("running", _at(2027, 9, 9, 9, 5), date(1965, 9, 9),
                                                                 zhao.id)
    assert _row(session, "birthdays", f"owner:{wang.id}").due_at == _at(2027, 5, 12, 9, 5)
    clocks.check_due(session, _at(2027, 9, 9, 9, 4))
    assert _records(session, "birthdays") == []
    pushes = [p for p in clocks.check_due(session, _at(2027, 9, 9, 9, 5)) if p.source == f"O13:owner:{zhao.id}"]
    assert [p.recipient for p in pushes] == ["o_zhao"]
    assert [(r.subject, r.period) for r in _records(session, "birthdays")] == [(f"owner:{zhao.id}", "birthday:2027")]
    assert row.due_at == _at(2028, 9, 9, 9, 5) and row.level == 1
    zhao.birthday = date(1965, 10, 9)  # corrected
    clocks.check_due(session, _at(2028, 9, 9, 9, 5))  # the old date: no greeting, the clock ends
    assert (row.state, row.detail["stopped_by"]) == ("met", "date_changed")
    clocks.check_due(session, _at(2028, 9, 9, 9, 6))  # the next check finds the new date
    again = _row(session, "birthdays", f"owner:{zhao.id}")
    assert (again.round, again.due_at) == (1, _at(2028, 10, 9, 9, 5))


def test_a_first_check_starts_many_clocks_over_a_few_minutes(demo, session, monkeypatch):
    """Each check starts at most START_BATCH clocks of a policy (one short write
    transaction); the next checks start the rest, and none is started twice."""
    from handlers import clocks
    from handlers.clocks import calendar
    from store.models import CalendarClock

    monkeypatch.setattr(calendar, "START_BATCH", 5)  # the demo has 12 owners with a birthday

    def started() -> int:
        return session.scalar(select(func.count()).select_from(CalendarClock).where(CalendarClock.clock == "birthdays"))

    counts = []
    for minute in range(4):
        clocks.check_due(session, T0 + timedelta(minutes=minute))
        counts.append(started())
    assert counts == [5, 10, 12, 12]


def test_an_edited_calendar_takes_effect_at_once(demo, session, tmp_path, monkeypatch):
    """A manager moves the bills from the 1st to the 3rd (the file is re-read when it
    changes): the running clock waits for the new day, not one more old one."""
    from handlers import clocks
    from handlers.clocks import calendar
    from store.models import Campaign

    clocks.check_due(session, T0)
    assert _row(session, "bills").due_at == _at(2026, 10, 1, 9, 17)
    edited = tmp_path / "calendar_clocks.yaml"
    edited.write_text(calendar.POLICY_FILE.read_text(encoding="utf-8").replace(
        'calendar: {every: month, day: 1, at: "09:17"}', 'calendar: {every: month, day: 3, at: "09:30"}'), encoding="utf-8")
    monkeypatch.setenv("GUANJIA_CALENDAR_FILE", str(edited))
    clocks.check_due(session, T0 + timedelta(minutes=1))
    assert _row(session, "bills").due_at == _at(2026, 10, 3, 9, 30)
    clocks.check_due(session, _at(2026, 10, 1, 9, 17))
    assert session.scalar(select(func.count()).select_from(Campaign).where(Campaign.kind == "bill")) == 0
    clocks.check_due(session, _at(2026, 10, 3, 9, 30))
    assert session.scalar(select(Campaign.dedup_key).where(Campaign.kind == "bill")) == "O14:2026-10"


@pytest.mark.parametrize("raw, after, anchor, expected", [
    ({"every": "month", "day": 31, "at": "09:00"}, _at(2026, 9, 15), None,  # a 30-day month: its last day
     [_at(2026, 9, 30, 9, 0), _at(2026, 10, 31, 9, 0), _at(2026, 11, 30, 9, 0)]),
    ({"every": "quarter", "month": 3, "day": 20, "at": "10:20"}, _at(2026, 9, 20, 10, 20), None,
     [_at(2026, 12, 20, 10, 20), _at(2027, 3, 20, 10, 20), _at(2027, 6, 20, 10, 20)]),
    ({"every": "week", "weekday": "mon", "at": "08:43"}, _at(2026, 9, 15, 9, 0), None,
     [_at(2026, 9, 21, 8, 43), _at(2026, 9, 28, 8, 43), _at(2026, 10, 5, 8, 43)]),
    ({"every": "year", "at": "09:05"}, _at(2027, 1, 1), date(1980, 2, 29),
     [_at(2027, 2, 28, 9, 5), _at(2028, 2, 29, 9, 5), _at(2029, 2, 28, 9, 5)]),
    ({"every": "15 days", "at": "10:07"}, _at(2026, 9, 1), date(2026, 10, 1),
     [_at(2026, 10, 1, 10, 7), _at(2026, 10, 16, 10, 7), _at(2026, 10, 31, 10, 7)]),
    ({"once": "30 days before", "at": "10:12"}, _at(2026, 9, 1), date(2026, 12, 1), [_at(2026, 11, 1, 10, 12)]),
])
def test_calendar_rules_give_their_moments(raw, after, anchor, expected):
    from handlers.clocks.calendar_rule import parse_calendar

    rule = parse_calendar(raw, "test")
    got, t = [], after
    for _ in expected:
        t = rule.next_at(t, anchor)
        if t is None:
            break
        got.append(t)
    assert got == expected
    assert rule.next_at(expected[-1], anchor) is None if rule.kind == "before" else True
