"""The `guanjia` command (also `python -m bot`). CONTRACT.md lists the stable commands."""
from __future__ import annotations

import json
import os
import sys
from importlib.metadata import entry_points

import click

from ground.config import ConfigError, PROJECT_ROOT, get_settings


@click.group()
def main() -> None:
    """管家: WeChat / WeCom concierge bot."""
    from bot import ports

    ports.install()  # every command may run handlers (ground/ports.py)


# --- processes ---------------------------------------------------------------

@main.command()
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn.")
@click.option("--workers", default=None, type=int, help="gunicorn workers (default from deploy/gunicorn.conf.py)")
def serve(port: int, host: str, dev: bool, workers: int | None) -> None:
    """The webhook and web server."""
    _settings_or_exit()
    click.echo(f"console: http://{host}:{port}/console/  (health: http://{host}:{port}/healthz)")
    if dev:
        from bot.web import create_app

        create_app().run(host=host, port=port, threaded=True)
        return
    args = ["gunicorn", "-c", str(PROJECT_ROOT / "deploy" / "gunicorn.conf.py"), "-b", f"{host}:{port}"]
    if workers:
        args += ["-w", str(workers)]
    os.execvp(sys.executable, [sys.executable, "-m", *args, "bot.web:create_app()"])


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--queues", default=None, help="Comma-separated queue names (default: all).")
@click.option("--fork", is_flag=True, help="Fork a process per job (rq's default; slower).")
def worker(burst: bool, queues: str | None, fork: bool) -> None:
    """An rq worker on the project's queues."""
    _settings_or_exit()
    from bot.worker import run_worker

    run_worker(burst=burst, queues=queues.split(",") if queues else None, fork=fork)


@main.command()
@click.option("--port", default=8000, show_default=True, type=int)
def run(port: int) -> None:
    """Web + worker + scheduler together, on the embedded defaults."""
    _settings_or_exit()
    from bot.runall import run_all

    run_all(port)


# --- data ----------------------------------------------------------------------

@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (`alembic upgrade heads`)."""
    settings = _settings_or_exit()
    from store.migrate import upgrade

    upgrade(settings.database_url)
    click.echo(f"database at {settings.database_url} is up to date")


@main.command("demo-data")
def demo_data() -> None:
    """Load a demo community: buildings, owners, staff, groups."""
    settings = _settings_or_exit()
    from bot.demo import load_demo
    from store.migrate import upgrade

    upgrade(settings.database_url)
    click.echo(load_demo())


# --- understanding ----------------------------------------------------------------

@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object (CONTRACT.md).")
@click.option("--chat", type=click.Choice(["private", "vip", "building"]), default="private")
@click.option("--role", type=click.Choice(["owner", "admin", "staff"]), default="owner")
@click.option("--stdin", "from_stdin", is_flag=True, help="Many messages, one JSON object a line.")
@click.argument("text", required=False)
def route(as_json: bool, chat: str, role: str, from_stdin: bool, text: str | None) -> None:
    """Explain what the bot would do with TEXT (no side effects)."""
    from handlers.router import route as do_route

    if from_stdin:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                case = json.loads(line)
                res = do_route(case.get("text", ""), case.get("chat") or chat, case.get("role") or role).contract()
            except Exception as exc:  # one bad line must not stop the batch
                res = {"error": f"{type(exc).__name__}: {exc}"}
            click.echo(json.dumps(res, ensure_ascii=False))
        return
    if text is None:
        raise click.UsageError("TEXT is required (or --stdin)")
    res = do_route(text, chat, role)
    if as_json:
        click.echo(json.dumps(res.contract(), ensure_ascii=False))
    else:
        for k, v in res.contract().items():
            click.echo(f"{k:10} {v}")


@main.command()
@click.option("--as", "who", default=None, help="Who you play: an openid, a staff userid, or a name from the demo.")
@click.option("--chat", type=click.Choice(["private", "vip", "building", "staff"]), default="private")
def chat(who: str | None, chat: str) -> None:
    """Play an owner, an admin or a staff member and see the bot's replies and pushes."""
    _settings_or_exit()
    from bot.chat import run_chat

    run_chat(who, chat)


# --- development ----------------------------------------------------------------

@main.group()
def dev() -> None:
    """Development tools."""


@dev.command("fake-platform")
@click.option("--port", default=9100, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
def fake_platform(port: int, host: str) -> None:
    """A local stand-in for the WeChat and WeCom HTTP APIs."""
    from bot.devtools.fake_platform import serve_fake_platform

    serve_fake_platform(host, port)


def _settings_or_exit():
    try:
        return get_settings()
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


# The edge's own command groups; a capability's come from its `Capability.cli`.
CORE_COMMANDS: tuple[str, ...] = ("bot.rule_check:check", "bot.console.cli:users")
# Commands of the floor above the edge (`guanjia schedule`, `guanjia scheduler`: scheduler/)
# register themselves as entry points of this group in pyproject.toml, as Flask finds
# `flask.commands`: the edge never names a module above it. `pip install -e .`
# (scripts/setup.sh) writes them into the package's metadata.
COMMANDS_GROUP = "guanjia.commands"


def add_command(command: click.Command, owner: str) -> None:
    """`main.add_command`, refusing a name already taken (click would replace it)."""
    from handlers.registry import DuplicateRegistration

    name = command.name or ""
    old = main.commands.get(name)
    if old is not None and old is not command:
        raise DuplicateRegistration("CLI command", name, getattr(old, "_guanjia_owner", "guanjia"), owner)
    command._guanjia_owner = owner  # type: ignore[attr-defined]
    main.add_command(command)


def _register_extra() -> None:
    from handlers import load_capabilities
    from handlers.capability import resolve

    for spec in CORE_COMMANDS:
        add_command(resolve(spec), spec)
    found = entry_points(group=COMMANDS_GROUP)
    for ep in found:
        add_command(ep.load(), f"entry point {ep.name} = {ep.value}")
    if not found:  # metadata from before the group existed: say how to mend it, don't hide it
        click.echo(f"warning: no `{COMMANDS_GROUP}` entry points (guanjia schedule, guanjia scheduler are "
                   "missing): reinstall the package, `pip install -e .` (scripts/setup.sh)", err=True)
    for cap in load_capabilities():
        for spec in cap.cli_commands:
            add_command(resolve(spec), f"capability {cap.name}")


_register_extra()
