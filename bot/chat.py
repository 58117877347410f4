"""`guanjia chat`: play an owner, a group admin or a staff member in a terminal.

Each line you type becomes a `Message` handled in-process by
`handlers.dispatch.handle` on the real database (no HTTP, no worker), exactly
as a worker would handle it. The bot's replies to you are printed, and so is
every outbox row the message created (pushes to other people: staff cards,
notices...). Pushes stay queued in the outbox; a running `guanjia worker`
would send them.

Commands: /as WHO, /chat private|vip|building|staff, /who, /help, /quit.
"""
from __future__ import annotations

import itertools
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy import func, select

from bot import ports
from bot.demo import load_demo
from bot.outbound import outbox
from ground import clock
from ground.config import get_settings
from handlers import dispatch  # dispatch.handle, looked up per call (tests patch it)
from handlers.message import Context, Message
from store.db import session_scope
from store.migrate import upgrade
from store.models import Group, Home, OutboxMessage, Owner, Staff

CHATS = ("private", "vip", "building", "staff")
HELP = """commands:
  /as WHO        play someone else (name, openid, external userid or staff userid)
  /chat KIND     private (Official Account or WeCom app 1:1), vip, building (customer groups)
  /who           list the people you can play
  /quit          leave (Ctrl-D too)
anything else is a message to the bot."""


@dataclass
class Persona:
    name: str
    kind: str  # owner / staff
    ident: str  # openid (owner) or userid (staff)
    external_userid: str | None = None  # how an owner appears in customer groups
    building_id: int | None = None
    detail: str = ""


def _people(session) -> list[Persona]:
    out = []
    for o in session.scalars(select(Owner).order_by(Owner.id)):
        home = session.get(Home, o.home_id) if o.home_id else None
        out.append(Persona(o.name, "owner", o.openid or o.external_userid or f"owner-{o.id}", o.external_userid,
                           home.building_id if home else None, f"owner, {o.tier}, {home.room if home else '-'}"))
    for s in session.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.id)):
        out.append(Persona(s.name, "staff", s.userid, detail=f"staff, {s.team}, {s.role}"))
    return out


NEW_OWNER_PREFIX = "new:"


def find_persona(session, who: str) -> Persona | None:
    """By name, openid, external userid or staff userid (exact first, then a unique prefix).

    `new:OPENID` plays someone who follows the Official Account but is not bound
    to a home yet, to try the binding exchange."""
    if who.startswith(NEW_OWNER_PREFIX) and len(who) > len(NEW_OWNER_PREFIX):
        ident = who[len(NEW_OWNER_PREFIX):]
        return Persona("新业主", "owner", ident, detail="owner, not bound to a home yet")
    people = _people(session)
    for p in people:
        if who in (p.name, p.ident, p.external_userid):
            return p
    matches = [p for p in people if p.name.startswith(who) or p.ident.startswith(who)]
    return matches[0] if len(matches) == 1 else None


def _group_for(session, persona: Persona, chat: str):
    query = select(Group).where(Group.kind == chat).order_by(Group.id)
    groups = list(session.scalars(query))
    if chat == "building" and persona.building_id:
        groups = [g for g in groups if g.building_id == persona.building_id] or groups
    return groups[0] if groups else None


class ChatSession:
    """One person in one chat; `say()` handles a line and returns what to print."""

    _ids = itertools.count(int(time.time() * 1000) % 10**12)

    def __init__(self, persona: Persona, chat: str) -> None:
        self.persona = persona
        self.chat = chat

    def describe(self, session) -> str:
        p = self.persona
        where = {"private": "a private chat with the bot (Official Account)",
                 "staff": "the WeCom app (staff 1:1)"}.get(self._chat(), "")
        if not where:
            group = _group_for(session, p, self._chat())
            where = f"the group {group.name} ({group.chat_id})" if group else f"a {self._chat()} group (none found)"
        return f"you are {p.name} ({p.detail}) in {where}"

    def _chat(self) -> str:
        # Staff talk to the bot through the WeCom app; owners through the Official Account.
        if self.chat in ("private", "staff"):
            return "staff" if self.persona.kind == "staff" else "private"
        return self.chat

    def message(self, session, text: str):
        chat = self._chat()
        p = self.persona
        created = int(clock.now().timestamp())
        msg_id = str(next(self._ids))
        if chat == "private":
            return Message(channel="mp", sender=p.ident, chat="private", text=text, msg_id=msg_id, created_at=created)
        if chat == "staff":
            return Message(channel="wecom", sender=p.ident, chat="staff", text=text, msg_id=msg_id,
                           created_at=created)
        group = _group_for(session, p, chat)
        sender = p.external_userid or p.ident if p.kind == "owner" else p.ident
        return Message(channel="archive", sender=sender, chat=chat, text=text, msg_id=msg_id, created_at=created,
                       group_id=group.chat_id if group else None)

    def say(self, text: str) -> list[str]:
        """Handle one line through dispatch.handle; the lines to print."""
        with session_scope() as s:
            before = s.scalar(select(func.coalesce(func.max(OutboxMessage.id), 0)))
            now = clock.now()
            msg = self.message(s, text)
            out = dispatch.handle(Context(session=s, now=now), msg)
            for push in out.pushes:
                outbox.add(s, push, now)
            s.flush()
            created = list(s.scalars(select(OutboxMessage).where(OutboxMessage.id > before)
                                     .order_by(OutboxMessage.id)))
            lines = [f"管家 > {r}" for r in out.replies]
            if not out.replies:
                lines.append("管家 (no reply)")
            for row in created:
                lines.append(f"  push -> {row.channel}:{row.recipient} [{row.kind}] {_summary(row.payload)}")
            tag = f"intent={out.intent}" if out.intent else ""
            if out.route and out.route.get("violation") not in (None, "none"):
                tag += f" violation={out.route['violation']} action={out.route.get('action')}"
            if tag:
                lines.append(f"  ({tag.strip()}, role={msg.role})")
        return lines


def _summary(payload: dict, limit: int = 160) -> str:
    """One line for a push: its text where it has one, else its JSON."""
    import json

    text = (payload.get("content") or payload.get("text") or payload.get("description")
            or (payload.get("card") or {}).get("main_title", {}).get("title") or "")
    if not text:
        text = json.dumps(payload, ensure_ascii=False)
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _ensure_data(out: TextIO) -> None:
    """Migrated database with people in it; the demo community if it is empty."""
    upgrade(get_settings().database_url)
    with session_scope() as s:
        empty = not s.scalar(select(func.count()).select_from(Owner))
    if empty:
        print(f"(empty database: {load_demo()})", file=out)


def run_chat(who: str | None, chat: str = "private", inp: TextIO | None = None, out: TextIO | None = None) -> int:
    """The interactive loop; reads `inp` (stdin) until EOF or /quit. Returns an exit code."""
    import logging

    ports.install()
    io = _Terminal(inp or sys.stdin, out or sys.stdout)
    logging.getLogger().setLevel(logging.WARNING)  # the conversation, not the logs
    _ensure_data(io.out)
    persona = _choose_persona(io, who)
    if persona is None:
        return 1
    if chat not in CHATS:
        io.say(f"chat must be one of {', '.join(CHATS)}")
        return 2
    session = ChatSession(persona, chat)
    with session_scope() as s:
        io.say(session.describe(s) + ". /help for commands.")
    while True:
        line = io.ask(f"{session.persona.name}> ")
        if line is None:
            return 0
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit", "/q"):
            return 0
        if line.startswith("/") and _meta_command(io, session, line):
            continue
        if not io.interactive:
            io.say(f"{session.persona.name}> {line}")  # a transcript when piped
        try:
            for text in session.say(line):
                io.say(text)
        except Exception as exc:  # a handler bug must not end the session; show it
            io.say(f"  !! {type(exc).__name__}: {exc}")
        io.out.flush()


class _Terminal:
    """Where the chat reads and writes; prompts only when a person types."""

    def __init__(self, inp: TextIO, out: TextIO) -> None:
        self.inp, self.out = inp, out
        self.interactive = inp.isatty() if hasattr(inp, "isatty") else False

    def ask(self, prompt: str) -> str | None:
        if self.interactive:
            self.out.write(prompt)
            self.out.flush()
        line = self.inp.readline()
        return None if line == "" else line.rstrip("\n")

    def say(self, text: str) -> None:
        print(text, file=self.out)

    def list_people(self) -> None:
        with session_scope() as s:
            for p in _people(s):
                self.say(f"  {p.name:<6} {p.ident:<16} {p.detail}")


def _choose_persona(io: _Terminal, who: str | None) -> "Persona | None":
    """Who the developer plays: `who`, else asked until someone matches (None at EOF)."""
    with session_scope() as s:
        persona = find_persona(s, who) if who else None
    while persona is None:
        if who:
            io.say(f"nobody called {who!r}")
        io.say("who are you? (a name, openid or staff userid; new:OPENID for an owner not yet bound)")
        io.list_people()
        who = io.ask("as> ")
        if who is None:
            return None
        with session_scope() as s:
            persona = find_persona(s, who.strip())
    return persona


def _meta_command(io: _Terminal, session: "ChatSession", line: str) -> bool:
    """/help, /who, /as NAME, /chat KIND: True when `line` was one of them."""
    if line == "/help":
        io.say(HELP)
    elif line == "/who":
        io.list_people()
    elif line.startswith("/as "):
        _speak_as(io, session, line[4:].strip())
    elif line.startswith("/chat"):
        _chat_in(io, session, line[5:].strip())
    else:
        return False
    return True


def _speak_as(io: _Terminal, session: "ChatSession", name: str) -> None:
    """/as NAME: write as that person from now on."""
    with session_scope() as s:
        p = find_persona(s, name)
        if p is None:
            io.say(f"nobody called {name!r}; /who lists them")
            return
        session.persona = p
        io.say(session.describe(s))


def _chat_in(io: _Terminal, session: "ChatSession", kind: str) -> None:
    """/chat KIND: write in that chat (private, a group...) from now on."""
    if kind not in CHATS:
        io.say(f"/chat {'|'.join(CHATS)}")
        return
    session.chat = kind
    with session_scope() as s:
        io.say(session.describe(s))
