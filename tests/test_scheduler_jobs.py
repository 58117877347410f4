"""Scheduler jobs under a controlled clock: each fires when it should and not otherwise."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from ground.clock import CST


def _run_span(frozen_clock, start: datetime, end: datetime, names: list[str], between=None) -> list[tuple]:
    """Move the clock to each moment the schedule fires one of `names` in (start, end]
    and run that job's task, as the leader + a worker would. Returns (time, job, result)."""
    from scheduler.main import due_between
    from scheduler.tasks import run_job

    out = []
    for t, name in due_between(start, end, names):
        frozen_clock.set(t)
        if between:
            between(t)
        out.append((t, name, run_job(name, None)))
    return out


def _reminders(rule: str):
    from store.db import session_scope
    from store.models import Reminder

    with session_scope() as s:
        return [(r.subject, r.period, r.created_at.astimezone(CST).date())
                for r in s.scalars(select(Reminder).where(Reminder.rule == rule).order_by(Reminder.id))]


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
    from scheduler.config import ScheduleError, load_schedule, SCHEDULE_FILE
    from scheduler.tasks import check_tasks

    s = check_tasks(load_schedule())
    assert {"arrears", "warranty", "bills", "census", "survey", "forum", "greetings", "birthdays", "sweep"} <= set(s.jobs)
    bad = tmp_path / "s.yaml"
    bad.write_text(SCHEDULE_FILE.read_text(encoding="utf-8").replace("task: arrears", "task: arrearz"), encoding="utf-8")
    with pytest.raises(ScheduleError, match=r"s.yaml: jobs.arrears.task: unknown task 'arrearz'"):
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
    from scheduler.timing import in_quiet_hours
    # Nothing owner-facing is scheduled in quiet hours.
    every = due_between(datetime(2026, 9, 1, tzinfo=CST), datetime(2026, 9, 3, tzinfo=CST),
                        ["arrears", "warranty", "bills", "greetings", "birthdays", "survey", "forum"])
    assert every and not any(in_quiet_hours(t) for t, _ in every)


def test_birthday_on_29_february(demo, frozen_clock):
    zhang = _owner_id("张伟")  # born 1980-02-29 (demo community)
    runs = _run_span(frozen_clock, datetime(2027, 2, 25, tzinfo=CST), datetime(2027, 3, 3, tzinfo=CST), ["birthdays"])
    hits = {t.date(): r["birthdays"] for t, _, r in runs if r["birthdays"]}
    assert hits == {date(2027, 2, 28): [zhang]}  # 2027 is not a leap year: the 28th
    runs = _run_span(frozen_clock, datetime(2028, 2, 26, tzinfo=CST), datetime(2028, 3, 2, tzinfo=CST), ["birthdays"])
    hits = {t.date(): r["birthdays"] for t, _, r in runs if r["birthdays"]}
    assert hits == {date(2028, 2, 29): [zhang]}  # leap year: the day itself, not the 28th as well
    assert [p for p in _reminders("O13") if p[0] == f"owner:{zhang}"] == [
        (f"owner:{zhang}", "birthday:2027", date(2027, 2, 28)), (f"owner:{zhang}", "birthday:2028", date(2028, 2, 29))]
    sent = _outbox(f"O13:owner:{zhang}")
    assert len(sent) == 2 and sent[0][0] == "o_zhang" and sent[0][1] == "template"
    # Run again the same day: nothing new.
    from scheduler.tasks import birthdays
    assert birthdays()["birthdays"] == []


def test_holiday_greetings_fire_on_the_day_only(demo, frozen_clock):
    runs = _run_span(frozen_clock, datetime(2026, 9, 23, tzinfo=CST), datetime(2026, 10, 4, tzinfo=CST), ["greetings"])
    occasions = {t.date(): r["occasion"] for t, _, r in runs if r["occasion"]}
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
    from scheduler.tasks import greetings
    greetings()
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
    hits = [(t.date(), r["homes"]) for t, _, r in runs if r["homes"]]
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

    assert jobs.fire("arrears") == "queued"
    assert jobs.fire("arrears") == "duplicate"  # a second scheduler, or a catch-up, the same day
    frozen_clock.advance(days=1)
    assert jobs.fire("arrears") == "queued"
    with session_scope() as s:
        assert [r.slot for r in s.scalars(select(JobRun).order_by(JobRun.id))] == ["2026-09-15", "2026-09-16"]


def test_the_capabilities_jobs_are_scheduled_and_run(demo, frozen_clock):
    """Each capability's periodic jobs (Capability.job) join schedule.yaml's and run."""
    from scheduler import tasks
    from scheduler.config import get_schedule

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

    from scheduler.config import SCHEDULE_FILE, ScheduleError, load_schedule

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
    """The leader died a minute before the monthly bills: the next leader must run
    them on start (misfire), not reschedule them to next month."""
    from datetime import timezone

    from scheduler.config import get_schedule
    from scheduler.main import build_scheduler, sync_jobs
    from store.db import get_engine

    sched, schedule = build_scheduler(get_engine())
    sched.start(paused=True)
    try:
        sync_jobs(sched, schedule)
        missed = datetime(2020, 1, 1, 9, 17, tzinfo=CST)
        sched.get_job("bills").modify(next_run_time=missed)
        sync_jobs(sched, get_schedule())  # what a new leader does first
        assert sched.get_job("bills").next_run_time == missed
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


def test_qingming_is_not_a_happy_holiday(demo, frozen_clock):
    from scheduler.tasks import greetings
    from store.db import session_scope
    from store.models import Campaign

    frozen_clock.set(datetime(2026, 4, 4, 8, 47, tzinfo=CST))
    cid = greetings()["campaign"]
    with session_scope() as s:
        text = s.get(Campaign, cid).text
    assert "清明" in text and "快乐" not in text


def test_ticket_digests_are_scheduled_as_o19(demo, frozen_clock):
    """O19: the daily, weekly and monthly complaint reviews are jobs that reach the ticket digests."""
    from scheduler.config import get_schedule
    from scheduler.tasks import known_tasks, run_job

    jobs = get_schedule().jobs
    for name in ("ticket_digest", "ticket_weekly", "ticket_monthly"):
        assert name in jobs and jobs[name].task in known_tasks()
        res = run_job(name)
        assert res.get("hook") == name and "skipped" not in res, res
