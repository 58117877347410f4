"""A tiny capability that proves "one package + one line": one text command,
one intent, one page, one job, one CLI command, a warm-up and a demo loader,
all declared on its `capability` object. Adding the line "tests.capdemo" to
handlers.CAPABILITIES (tests/test_capabilities.py does it for one test) is all
it takes for the hosts to install it."""
from __future__ import annotations

from datetime import datetime

import click
from sqlalchemy.orm import Session

from handlers.capability import Capability
from handlers.message import Context, Message, Outcome, Push

capability = Capability("capdemo")
capability.page("tests.capdemo.web:bp")  # a path: handlers never import the edge
capability.cli("tests.capdemo:capdemo_cli")

PING = "演示能力"
PONG = "演示能力在线：一个包，一行注册。"
TICKS: list[datetime] = []  # what the job saw (the test reads it)
WARMED: list[bool] = []
DEMO_ROWS: list[int] = []


@capability.text_command("capdemo_ping", rf"^{PING}$", chats=("private",), why="the capability demo")
def ping(ctx: Context, msg: Message, _route) -> Outcome:
    return Outcome(replies=[PONG], intent="command")


@capability.intent("capdemo_question")
def question(ctx: Context, msg: Message, _route) -> Outcome:
    return Outcome(replies=["演示意图"], intent="capdemo_question")


@capability.job("capdemo_tick", trigger="interval", minutes=5, once_per=300)
def tick(session: Session, now: datetime) -> list[Push]:
    TICKS.append(now)
    return []


capability.warm_up(lambda: WARMED.append(True))


@capability.demo
def demo_rows(session: Session) -> None:
    DEMO_ROWS.append(1)


@click.command("capdemo")
def capdemo_cli() -> None:
    """The capability demo's CLI command."""
    click.echo(PONG)
