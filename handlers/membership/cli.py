"""`guanjia member ...`: staff and managers at a terminal (every change audited)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import click

from ground import clock, ports
from handlers.membership.clocks import check_clocks
from handlers.membership.service import (add_spend, evaluate_memberships, find_owner_by_key,
                                         grant_special_contribution, lift_suspension, local_day,
                                         record_breach, staff_lookup)
from store.db import session_scope
from store.models import AuditLog


def _owner(s, key: str):
    o = find_owner_by_key(s, key)
    if o is None:
        raise click.ClickException(f"no owner matches {key!r} (room, phone, name or openid)")
    return o


def _send(s, pushes) -> list[int]:
    """Record the pushes in this transaction (the outbox port); send them after it commits."""
    box = ports.outbox()
    return [oid for p in pushes if p for oid in [box.add(s, p, clock.now())] if oid is not None]


def _after_commit(ids: list[int]) -> None:
    ports.outbox().queue_send(ids)


def _act_on_owner(key: str, act: Callable, refused: tuple[type[Exception], ...] = ()) -> tuple[Any, Any]:
    """(owner, result) of `act(session, owner) -> (result, pushes)` for the owner `key` names, in
    one transaction; its pushes are sent once it commits. An error of a `refused` type is the
    command's message to the operator (exit 1), not a traceback."""
    with session_scope() as s:
        o = _owner(s, key)
        try:
            result, pushes = act(s, o)
        except refused as exc:
            raise click.ClickException(str(exc))
        ids = _send(s, pushes)
    _after_commit(ids)
    return o, result


@click.group()
def member() -> None:
    """Membership: look-ups, spend, special contributions, sanctions, the monthly evaluation."""


@member.command("show")
@click.argument("key")
@click.option("--actor", required=True, help="your WeCom userid (the look-up is logged)")
def show(key: str, actor: str) -> None:
    """An owner's membership (room, phone, name or openid)."""
    with session_scope() as s:
        click.echo(staff_lookup(s, actor, key, clock.now()))


@member.command("spend")
@click.argument("key")
@click.argument("amount", type=float)
@click.option("--category", default="other", show_default=True)
@click.option("--on", "on_", default=None, help="YYYY-MM-DD (default today)")
@click.option("--actor", required=True)
def spend(key: str, amount: float, category: str, on_: str | None, actor: str) -> None:
    """Record spend that counts toward tiers."""
    with session_scope() as s:
        o = _owner(s, key)
        row = add_spend(s, o, amount, date.fromisoformat(on_) if on_ else local_day(clock.now()), category,
                        entered_by=actor)
        s.add(AuditLog(actor=actor, action="member_spend", target=f"owner:{o.id}",
                       detail={"amount_fen": row.amount_fen, "category": category}))
        click.echo(f"recorded {amount:.2f} yuan for {o.name}")


@member.command("upgrade")
@click.argument("key")
@click.argument("tier")
@click.option("--reason", required=True, help="the special contribution")
@click.option("--actor", required=True, help="a manager's WeCom userid")
def upgrade(key: str, tier: str, reason: str, actor: str) -> None:
    """Special-contribution upgrade (第九条 3), by a manager."""
    o, row = _act_on_owner(key, lambda s, o: grant_special_contribution(s, o, tier, reason, actor, clock.now()),
                           refused=(PermissionError, ValueError))
    click.echo(f"{o.name}: {row.from_tier} -> {row.to_tier} ({reason})")


@member.command("sanction")
@click.argument("key")
@click.argument("action", type=click.Choice(["warn", "suspend", "downgrade"]))
@click.option("--reason", required=True)
@click.option("--days", type=int, default=None, help="suspension length (default from tiers.yaml)")
@click.option("--actor", required=True)
def sanction(key: str, action: str, reason: str, days: int | None, actor: str) -> None:
    """Record a rule breach (第十条 2)."""
    o, _ = _act_on_owner(key, lambda s, o: record_breach(s, o, action, reason, actor, clock.now(), days),
                         refused=(ValueError,))
    click.echo(f"{o.name}: {action} recorded")


@member.command("lift")
@click.argument("key")
@click.option("--actor", required=True)
def lift(key: str, actor: str) -> None:
    """End an owner's benefit suspension early."""
    o, sus = _act_on_owner(key, lambda s, o: lift_suspension(s, o, actor, clock.now()))
    click.echo(f"{o.name}: " + ("suspension lifted" if sus else "no suspension in force"))


def _run_now(job) -> int:
    """Run a periodic job (session, now) -> pushes now; the pushes go out after commit."""
    with session_scope() as s:
        ids = _send(s, job(s, clock.now()))
    _after_commit(ids)
    return len(ids)


@member.command("evaluate")
def evaluate() -> None:
    """Run the monthly evaluation now (the scheduler does this monthly)."""
    click.echo(f"{_run_now(evaluate_memberships)} notices queued")


@member.command("clocks")
def clocks() -> None:
    """Check the O1-O3 clocks now and escalate broken ones."""
    click.echo(f"{_run_now(check_clocks)} escalations queued")
