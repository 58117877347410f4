"""`guanjia users ...`: console users and their API tokens."""
from __future__ import annotations

import sys

import click

from bot.console.auth import create_user, issue_token
from store.db import session_scope
from store.models import ConsoleUser


@click.group("users")
def users() -> None:
    """Console users (manager / supervisor / staff) and API tokens."""


@users.command("add")
@click.argument("username")
@click.option("--name", default=None, help="Display name (default: the username).")
@click.option("--role", type=click.Choice(["staff", "supervisor", "manager"]), default="staff", show_default=True)
@click.option("--staff", "staff_userid", default=None, help="The WeCom userid of the staff record this person is.")
@click.option("--password", default=None, help="Prompted for when not given.")
@click.option("--token", "with_token", is_flag=True, help="Also issue an API token (printed once).")
def add(username: str, name: str | None, role: str, staff_userid: str | None, password: str | None,
        with_token: bool) -> None:
    """Create a console user."""
    from bot.cli import _settings_or_exit  # here: bot/cli.py loads this module while loading

    _settings_or_exit()
    if password is None:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope() as s:
            user = create_user(s, username, name or username, role, password, staff_userid)
            token = issue_token(s, user, "cli") if with_token else None
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"user {username} ({role}) created")
    if token:
        click.echo(f"api token (shown once): {token}")


@users.command("token")
@click.argument("username")
@click.option("--label", default=None)
def token(username: str, label: str | None) -> None:
    """Issue a new API token for USERNAME (printed once)."""
    from bot.cli import _settings_or_exit  # here: bot/cli.py loads this module while loading

    _settings_or_exit()
    with session_scope() as s:
        user = _user_or_exit(s, username)
        click.echo(issue_token(s, user, label))


@users.command("list")
def list_users() -> None:
    """Every console user with role and state."""
    from sqlalchemy import select

    from bot.cli import _settings_or_exit  # here: bot/cli.py loads this module while loading

    _settings_or_exit()
    with session_scope() as s:
        for u in s.scalars(select(ConsoleUser).order_by(ConsoleUser.username)):
            click.echo(f"{u.username:20} {u.role:11} {'active' if u.active else 'disabled':8} {u.name}")


@users.command("disable")
@click.argument("username")
def disable(username: str) -> None:
    """Disable a user: their logins and tokens stop working at once."""
    from bot.cli import _settings_or_exit  # here: bot/cli.py loads this module while loading

    _settings_or_exit()
    with session_scope() as s:
        user = _user_or_exit(s, username)
        user.active = False
    click.echo(f"user {username} disabled")


def _user_or_exit(s, username: str):
    """The console user named `username`, or exit 2 saying there is none."""
    from sqlalchemy import select

    user = s.scalar(select(ConsoleUser).where(ConsoleUser.username == username))
    if user is None:
        click.echo(f"error: no user {username!r}", err=True)
        sys.exit(2)
    return user
