"""Scheduler jobs and the calendar obligations (O12-O19, clock policies fired by the
engine's `deadlines` check) under a controlled clock: each fires when it should and
not otherwise."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from ground.clock import CST
from tests.obligations import fire_at, fired, run_check


def _run_span(frozen_clock, start: datetime, end: datetime, names: list[str], between=None) -> list[tuple]:
    """Move the clock to each moment one of `names` (calendar obligations) may fire in
    (start, end] and run the engine's check there, as the leader + a worker would.
    Returns (time, policy, the records of that policy's occurrences at that moment)."""
    from scheduler.main import due_between

    out = []
    for t, name in due_between(start, end, names):
        frozen_clock.set(t)
        if between:
            between(t)
        run_check()
        out.append((t, name, fired(name, t)))
    return out


def _reminders(rule: str):
    from store.db import session_scope
    from store.models import Reminder

    with session_scope() as s:
        return [(r.subject, r.period, r.created_at.astimezone(CST).date())
                for r in s.scalars(select(Reminder).where(Reminder.rule == rule).order_by(Reminder.id))]


def _owners(records: list[dict]) -> list[int]:
    """The owners of a moment's records (subject owner:<id>)."""
    return [int(r["subject"].split(":")[1]) for r in records]


def _owner_id(name: str) -> int:
    from store.db import session_scope
    from store.models import Owner

    with session_scope() as s:
        return s.scalar(select(Owner.id).where(Owner.name == name))


def _outbox(source_prefix: str):
    from store.db import session_scope
    from store.models import OutboxMessage

    with session_scope() as s:
        return [(o.recipient, o.kind, o.payload, o.source) for o in s.scalars(
            select(OutboxMessage).where(OutboxMessage.source.like(source_prefix + "%")).order_by(OutboxMessage.id))]


def test_schedule_yaml_validates_and_names_errors(tmp_path):
    from handlers.schedule.config import ScheduleError, load_schedule, SCHEDULE_FILE
    from scheduler.tasks import check_tasks

    from handlers.clocks import calendar

    s = check_tasks(load_schedule())
    assert {"sweep", "campaigns", "deadlines"} <= set(s.jobs)
    # The calendar obligations are clock policies of the engine, not jobs of their own.
    assert {"arrears", "warranty", "bills", "census", "survey", "forum", "greetings", "birthdays"} <= set(
        calendar.policies()) and not set(calendar.policies()) & set(s.jobs)
    bad = tmp_path / "s.yaml"
    bad.write_text(SCHEDULE_FILE.read_text(encoding="utf-8").replace("task: pump_campaigns", "task: pump_campaignz"),
                   encoding="utf-8")
    with pytest.raises(ScheduleError, match=r"s.yaml: jobs.campaigns.task: unknown task 'pump_campaignz'"):
        check_tasks(load_schedule(bad))
    bad.write_text(SCHEDULE_FILE.read_text(encoding="utf-8").replace('start: "21:00"', 'start: "9pm"'), encoding="utf-8")
    with pytest.raises(ScheduleError, match="quiet_hours.start"):
        load_schedule(bad)


def test_periodic_jobs_fire_on_their_days_only():
    from scheduler.main import due_between

    fired = due_between(datetime(2026, 9, 1, tzinfo=CST), datetime(2027, 1, 1, tzinfo=CST),
                        ["bills", "census", "survey", "forum"])
    got = [(t.strftime("%Y-%m-%d %H:%M"), n) for t, n in fired]
    assert got == [("2026-09-01 09:17", "bills"), ("2026-09-20 10:20", "survey"), ("2026-10-01 09:17", "bills"),
                   ("2026-10-05 09:40", "census"), ("2026-11-01 09:17", "bills"), ("2026-11-10 10:25", "forum"),
                   ("2026-12-01 09:17", "bills"), ("2026-12-20 10:20", "survey")]
    from handlers.schedule.timing import in_quiet_hours
    # Nothing owner-facing is scheduled in quiet hours.
    every = due_between(datetime(2026, 9, 1, tzinfo=CST), datetime(2026, 9, 3, tzinfo=CST),
                        ["arrears", "warranty", "bills", "greetings", "birthdays", "survey", "forum"])
    assert every and not any(in_quiet_hours(t) for t, _ in every)


def test_birthday_on_29_february(demo, frozen_clock):
    zhang = _owner_id("张伟")  # born 1980-02-29 (demo community)
    runs = _run_span(frozen_clock, datetime(2027, 2, 25, tzinfo=CST), datetime(2027, 3, 3, tzinfo=CST), ["birthdays"])
    hits = {t.date(): _owners(r) for t, _, r in runs if r}
    assert hits == {date(2027, 2, 28): [zhang]}  # 2027 is not a leap year: the 28th
    runs = _run_span(frozen_clock, datetime(2028, 2, 26, tzinfo=CST), datetime(2028, 3, 2, tzinfo=CST), ["birthdays"])
    hits = {t.date(): _owners(r) for t, _, r in runs if r}
    assert hits == {date(2028, 2, 29): [zhang]}  # leap year: the day itself, not the 28th as well
    assert [p for p in _reminders("O13") if p[0] == f"owner:{zhang}"] == [
        (f"owner:{zhang}", "birthday:2027", date(2027, 2, 28)), (f"owner:{zhang}", "birthday:2028", date(2028, 2, 29))]
    sent = _outbox(f"O13:owner:{zhang}")
    assert len(sent) == 2 and sent[0][0] == "o_zhang" and sent[0][1] == "template"
    # Run again the same day: nothing new.
    run_check()
    assert len(_outbox(f"O13:owner:{zhang}")) == 2 and fired("birthdays", frozen_clock.now()) == []


def test_holiday_greetings_fire_on_the_day_only(demo, frozen_clock):
    runs = _run_span(frozen_clock, datetime(2026, 9, 23, tzinfo=CST), datetime(2026, 10, 4, tzinfo=CST), ["greetings"])
    occasions = {t.date(): r[0]["occasion"] for t, _, r in runs if r[0]["occasion"]}
    # 中秋 (traditional, its own day) and 国庆's first day; not the other days of the holiday.
    assert occasions == {date(2026, 9, 25): "中秋节", date(2026, 10, 1): "国庆节"}
    from store.db import session_scope
    from store.models import Campaign

    with session_scope() as s:
        camps = list(s.scalars(select(Campaign).where(Campaign.kind == "greeting").order_by(Campaign.id)))
        assert [(c.title, c.target, c.send_at.astimezone(CST).date()) for c in camps] == [
            ("中秋节", {"everyone": True}, date(2026, 9, 25)), ("国庆节", {"everyone": True}, date(2026, 10, 1))]
    # A rerun of the same day's job makes no second campaign.
    frozen_clock.set(datetime(2026, 10, 1, 15, 0, tzinfo=CST))
    run_check()
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Campaign).where(Campaign.kind == "greeting")) == 2


def test_arrears_every_15_days_until_paid_on_day_14(demo, frozen_clock):
    from store.db import session_scope
    from store.models import Owner

    yang, zhang = _owner_id("杨洋"), _owner_id("张伟")  # paid until 2026-08-31 / 2026-09-30

    def pay_on_day_14(t):
        # 杨洋 pays on day 14 after the first follow-up (2026-10-01 + 14 days).
        if t.date() == date(2026, 10, 15):
            with session_scope() as s:
                s.get(Owner, yang).fees_paid_until = date(2026, 12, 31)

    _run_span(frozen_clock, datetime(2026, 9, 20, tzinfo=CST), datetime(2026, 11, 20, tzinfo=CST), ["arrears"],
              between=pay_on_day_14)
    rem = _reminders("O15")
    # 杨洋: over a month in arrears from 1 Oct; paid on day 14, so no follow-up on day 15 (16 Oct).
    assert [(p, d) for s_, p, d in rem if s_ == f"owner:{yang}"] == [("2026-10-01#0", date(2026, 10, 1))]
    # 张伟: over a month from 31 Oct, then every 15 days while unpaid.
    assert [(p, d) for s_, p, d in rem if s_ == f"owner:{zhang}"] == [
        ("2026-10-31#0", date(2026, 10, 31)), ("2026-10-31#1", date(2026, 11, 15))]
    # Owner and their building's staff admin both hear of it.
    rows = _outbox(f"O15:owner:{zhang}")
    assert {r[0] for r in rows} == {"o_zhang", "kefu_xiaomei"}
    # Nobody else (吴强 is paid to 31 Oct: over a month only from 1 Dec).
    assert {s_ for s_, _, _ in rem} == {f"owner:{yang}", f"owner:{zhang}"}


def test_warranty_reminder_a_month_before_once(demo, frozen_clock):
    runs = _run_span(frozen_clock, datetime(2026, 10, 25, tzinfo=CST), datetime(2026, 12, 25, tzinfo=CST), ["warranty"])
    hits = [(t.date(), [f["room"] for f in r]) for t, _, r in runs if r]
    # 2-0601 ends 2026-12-01, 1-0801 ends 2026-12-20 (demo): 30 days before each, once.
    assert hits == [(date(2026, 11, 1), ["2-0601"]), (date(2026, 11, 20), ["1-0801"])]
    assert len(_outbox("O12:")) == 2


def test_monthly_bill_census_survey_forum_make_one_campaign_per_period(demo, frozen_clock):
    from store.db import session_scope
    from store.models import Campaign, Conversation

    _run_span(frozen_clock, datetime(2026, 9, 1, tzinfo=CST), datetime(2026, 12, 31, tzinfo=CST),
              ["bills", "census", "survey", "forum"])
    with session_scope() as s:
        got = [(c.kind, c.dedup_key) for c in s.scalars(select(Campaign).order_by(Campaign.id))]
        opened = s.scalar(select(func.count()).select_from(Conversation).where(Conversation.handler == "survey"))
    assert got == [("bill", "O14:2026-09"), ("survey", "O17:2026Q3"), ("bill", "O14:2026-10"), ("census", "O16:2026Q4"),
                   ("bill", "O14:2026-11"), ("forum", "O18:2026Q4"), ("bill", "O14:2026-12"), ("survey", "O17:2026Q4")]
    assert opened == 12
    assert [p for _, p, _ in _reminders("O16")] == ["2026Q4"]


def test_job_runs_once_per_slot(env, frozen_clock, monkeypatch):
    from scheduler import jobs
    from store.db import session_scope
    from store.models import JobRun

    assert jobs.fire("deadlines") == "queued"
    assert jobs.fire("deadlines") == "duplicate"  # a second scheduler, or a catch-up, the same minute
    frozen_clock.advance(minutes=1)
    assert jobs.fire("deadlines") == "queued"
    with session_scope() as s:
        assert [r.slot for r in s.scalars(select(JobRun).order_by(JobRun.id))] == ["2026-09-15T09:00",
                                                                                   "2026-09-15T09:01"]


def test_the_capabilities_jobs_are_scheduled_and_run(demo, frozen_clock):
    """Each capability's periodic jobs (Capability.job) join schedule.yaml's and run."""
    from scheduler import tasks
    from handlers.schedule.config import get_schedule

    jobs = get_schedule().jobs
    owners = {"deadlines": "clocks", "ticket_surveys": "tickets", "memberships": "membership",
              "archive_poll": "groups"}
    for name, owner in owners.items():
        assert name in jobs and tasks.capability_jobs()[name].owner == owner
        res = tasks.run_job(name)
        assert res["hook"] == name and ("pushes" in res or "result" in res), res


def test_a_job_name_is_one_job(env, tmp_path, monkeypatch):
    """schedule.yaml may not reuse a capability's job name: the error names both."""
    import pytest

    from handlers.schedule.config import SCHEDULE_FILE, ScheduleError, load_schedule

    text = SCHEDULE_FILE.read_text(encoding="utf-8").replace(
        "jobs:\n", "jobs:\n  ticket_surveys: {trigger: interval, minutes: 5, task: sweep}\n", 1)
    path = tmp_path / "schedule.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScheduleError, match="jobs.ticket_surveys: also declared by capability tickets"):
        load_schedule(path)
    # `capability_jobs: false`: only the file's own jobs (its ticket_surveys is then its own).
    path.write_text(text.replace("capability_jobs: true", "capability_jobs: false"), encoding="utf-8")
    jobs = load_schedule(path).jobs
    assert jobs["ticket_surveys"].task == "sweep" and "archive_poll" not in jobs


def test_a_new_leader_keeps_a_missed_run(env):
    """The leader died a minute before the monthly membership evaluation: the next leader
    must run it on start (misfire), not reschedule it to next month."""
    from datetime import timezone

    from handlers.schedule.config import get_schedule
    from scheduler.main import build_scheduler, sync_jobs
    from store.db import get_engine

    sched, schedule = build_scheduler(get_engine())
    sched.start(paused=True)
    try:
        sync_jobs(sched, schedule)
        missed = datetime(2020, 1, 1, 3, 10, tzinfo=CST)
        sched.get_job("memberships").modify(next_run_time=missed)
        sync_jobs(sched, get_schedule())  # what a new leader does first
        assert sched.get_job("memberships").next_run_time == missed
        assert {j.id for j in sched.get_jobs()} == set(schedule.jobs)
    finally:
        sched.shutdown(wait=False)


def test_cli_shows_upcoming_runs(env, frozen_clock):
    from click.testing import CliRunner

    from bot.cli import main

    out = CliRunner().invoke(main, ["schedule", "show", "--days", "1"]).output
    # Tuesday 2026-09-15 09:00 in Shanghai: the rest of today's jobs, then tomorrow's.
    assert out.splitlines()[:3] == ["2026-09-15 09:05  birthdays", "2026-09-15 10:07  arrears",
                                    "2026-09-15 10:12  warranty"]
    res = CliRunner().invoke(main, ["schedule", "run", "nosuchjob"])
    assert res.exit_code == 2 and "no job 'nosuchjob'" in res.output
    res = CliRunner().invoke(main, ["schedule", "run", "bills"])  # an obligation: the engine fires it
    assert res.exit_code == 2 and "calendar obligation" in res.output and "run deadlines" in res.output


def test_qingming_is_not_a_happy_holiday(demo, frozen_clock):
    from store.db import session_scope
    from store.models import Campaign

    cid = fire_at(frozen_clock, datetime(2026, 4, 4, 8, 47, tzinfo=CST), "greetings")["campaign"]
    with session_scope() as s:
        text = s.get(Campaign, cid).text
    assert "清明" in text and "快乐" not in text


def test_ticket_digests_are_scheduled_as_o19(demo, frozen_clock):
    """O19: the daily, weekly and monthly complaint reviews are calendar obligations that
    reach the ticket digests, at their times, once each."""
    from handlers.tickets.policy import roster

    sup, mgr = roster().escalation["supervisor"], roster().escalation["manager"]
    runs = _run_span(frozen_clock, datetime(2026, 9, 30, 9, 0, tzinfo=CST), datetime(2026, 10, 5, 9, 0, tzinfo=CST),
                     ["complaint_review_daily", "complaint_review_weekly", "complaint_review_monthly"])
    got = [(t.strftime("%m-%d %H:%M"), name) for t, name, r in runs if r]
    assert got == [("10-01 08:33", "complaint_review_daily"), ("10-01 08:53", "complaint_review_monthly"),
                   ("10-02 08:33", "complaint_review_daily"), ("10-03 08:33", "complaint_review_daily"),
                   ("10-04 08:33", "complaint_review_daily"), ("10-05 08:33", "complaint_review_daily"),
                   ("10-05 08:43", "complaint_review_weekly")]
    sent = [(r[0], r[2]["content"].splitlines()[0]) for r in _outbox("tickets:digest")]
    assert sent[:2] == [(sup, "**工单日报 2026-10-01**"), (sup, "**2026-09 工单月度分析**")]
    assert (mgr, "**2026-09 工单月度分析**") in sent and (sup, "**未完成工单周分析 2026-W41**") in sent
    run_check()  # the same moment again: nothing twice
    assert len(_outbox("tickets:digest")) == len(sent)
