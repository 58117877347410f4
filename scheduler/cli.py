"""`guanjia schedule ...`: look at and poke the scheduler without waiting for it."""
from __future__ import annotations

import json
from datetime import timedelta

import click

from bot.campaigns import campaign_status
from ground import clock
from handlers.clocks import calendar
from handlers.schedule.config import get_schedule
from scheduler.main import due_between, run_scheduler
from scheduler.tasks import run_job
from store.db import session_scope


@click.command("scheduler")
def scheduler_process() -> None:
    """The scheduler (one leader even when several run)."""
    from bot.cli import _settings_or_exit  # bot/cli.py loads this module while it is itself loading

    _settings_or_exit()
    run_scheduler()


@click.group("schedule")
def schedule_cli() -> None:
    """Scheduled jobs and campaigns."""


@schedule_cli.command("show")
@click.option("--days", default=7, show_default=True, type=int, help="How far ahead.")
@click.option("--all", "show_all", is_flag=True, help="Include the every-few-seconds jobs.")
def show(days: int, show_all: bool) -> None:
    """When each job of schedule.yaml and each calendar obligation (O12-O19) runs next (Asia/Shanghai)."""
    now = clock.now()
    frequent = {n for n, j in get_schedule().jobs.items() if j.trigger == "interval"}
    for t, name in due_between(now, now + timedelta(days=days)):
        if show_all or name not in frequent:
            click.echo(f"{t.astimezone(clock.CST):%Y-%m-%d %H:%M}  {name}")


@schedule_cli.command("run")
@click.argument("job")
def run(job: str) -> None:
    """Run JOB's task now, in this process (idempotent: a job already done for its period does nothing new)."""
    if job not in get_schedule().jobs:
        if job in calendar.policies():  # O12-O19 are clocks: the engine's check fires them when due
            raise click.UsageError(f"{job!r} is a calendar obligation (handlers/data/calendar_clocks.yaml), "
                                   f"fired by the clock engine when due: `guanjia schedule run deadlines`")
        raise click.UsageError(f"no job {job!r}; jobs: {', '.join(get_schedule().jobs)}")
    click.echo(json.dumps(run_job(job, "manual"), ensure_ascii=False, default=str))


@schedule_cli.command("campaign")
@click.argument("campaign_id", type=int)
def campaign(campaign_id: int) -> None:
    """A campaign's state and deliveries."""
    with session_scope() as s:
        click.echo(json.dumps(campaign_status(s, campaign_id), ensure_ascii=False))
