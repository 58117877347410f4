"""`guanjia groups ...`: look at moderation and drive the message archive by hand."""
from __future__ import annotations

import json

import click

from handlers.groups.archive import FakeArchiveSource, get_source, poll_archive
from handlers.groups.moderation import analyse, mask
from store.db import session_scope
from store.models.groups import ModerationCase


@click.group("groups")
def groups() -> None:
    """Customer groups: moderation, archive, cases."""


@groups.command("check")
@click.argument("text")
def check_cmd(text: str) -> None:
    """What moderation makes of TEXT, and TEXT as the staff admin would see it."""
    v = analyse(text)
    click.echo(json.dumps({"violation": v.violation, "why": v.why, "masked": mask(text)}, ensure_ascii=False))


@groups.command("poll")
def poll_cmd() -> None:
    """Read the message archive once (GUANJIA_ARCHIVE must be fake or sdk)."""
    if get_source() is None:
        raise click.ClickException("the archive is off: set GUANJIA_ARCHIVE=fake (with GUANJIA_ARCHIVE_FILE) or sdk")
    click.echo(f"{poll_archive()} archive records read")


@groups.command("say")
@click.option("--as", "sender", required=True, help="external_userid of an owner, or a staff userid")
@click.option("--group", "chat_id", required=True, help="chat id of the customer group")
@click.argument("text")
def say_cmd(sender: str, chat_id: str, text: str) -> None:
    """Put a message into the fake archive and read it (for demos and local runs)."""
    src = get_source()
    if not isinstance(src, FakeArchiveSource):
        raise click.ClickException("needs GUANJIA_ARCHIVE=fake")
    rec = src.add(sender, chat_id, text)
    click.echo(f"seq {rec.seq} added; {poll_archive(source=src)} records read (the worker handles them)")


@groups.command("cases")
@click.option("--group", "chat_id", default=None)
@click.option("--limit", default=20, show_default=True)
def cases_cmd(chat_id: str | None, limit: int) -> None:
    """Recent moderation cases (evidence is stored masked)."""
    from sqlalchemy import select

    with session_scope() as s:
        q = select(ModerationCase).order_by(ModerationCase.id.desc()).limit(limit)
        if chat_id:
            q = q.where(ModerationCase.group_chat_id == chat_id)
        for c in s.scalars(q):
            click.echo(f"#{c.id} {c.created_at:%Y-%m-%d %H:%M} {c.group_chat_id} {c.member_id} {c.violation} "
                       f"{c.step} strikes={c.strike_total} {c.status}{' (false positive)' if c.false_positive else ''}"
                       f" | {c.evidence or ''}")
