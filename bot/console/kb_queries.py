"""The knowledge base from the console: entries, the questions the bot could
not answer (faq_misses), and adding a phrasing or a new entry from a miss.

Where new text goes: the FAQ capability loads every YAML file under its data
directory (faq/data/) and hot-reloads on mtime change; entry ids must be
unique across files. So
- a new phrasing of an existing entry is inserted as one line into that
  entry's `questions:` list in the entry's own file (line-based, so the
  file's comments and folded answers stay as the editors wrote them);
- a new entry goes to `console_added.yaml` in the same directory, the one
  file the console owns.
Every write is validated with the FAQ loader before it is kept; an edit that
would not load is rolled back and reported, so the bot never serves (or
logs) a broken knowledge base because of the console.
"""
from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.console import bp
from bot.console.auth import audit
from bot.console.queries import Item, viewer
from bot.console.views import page
from faq import matcher
from faq.kb import load
from faq.normalize import clean
from ground.rules import RulesError
from handlers import privacy
from store.models import FaqMiss

CONSOLE_FILE = "console_added.yaml"
_write_lock = threading.Lock()  # two managers saving at once must not interleave edits


class KBEditError(ValueError):
    """The edit cannot be made; `field` names the input at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def data_dir() -> Path:
    """The directory the running matcher reads (tests point it at a copy)."""
    return Path(matcher.default().store.data_dir)


def entries(query: str | None = None) -> list:
    kb = matcher.default().store.get()
    rows = list(kb.entries)
    if query:
        rows = [e for e in rows if query in e.title or query in e.answer or any(query in q for q in e.questions)
                or query == e.id]
    return rows


def open_misses(session: Session, limit: int = 10):
    """Unresolved misses, grouped by normalized text, most asked first."""
    rows = session.execute(
        select(FaqMiss.normalized, func.count(), func.max(FaqMiss.id), func.max(FaqMiss.created_at))
        .where(FaqMiss.resolved.is_(False)).group_by(FaqMiss.normalized)
        .order_by(func.count().desc(), func.max(FaqMiss.id).desc()).limit(limit)).all()
    out = []
    for norm, n, last_id, last_at in rows:
        m = session.get(FaqMiss, last_id)
        # An owner's words: a number in them reaches staff masked (handlers/privacy.py).
        out.append(Item(label=_masked(m.text), when=last_at.isoformat() if last_at else "", id=m.id, text=m.text, count=n))
    return out


def _masked(text: str) -> str:
    try:
        return privacy.for_viewer(viewer(), text)
    except RuntimeError:  # outside a request (CLI): as stored
        return text


def miss_rows(session: Session, show_all: bool = False, limit: int = 200):
    stmt = select(FaqMiss).order_by(FaqMiss.id.desc()).limit(limit)
    if not show_all:
        stmt = stmt.where(FaqMiss.resolved.is_(False))
    return list(session.scalars(stmt))


def resolve_misses(session: Session, text: str) -> int:
    """Mark every unresolved miss with the same normalized text as answered."""
    norm = clean(text)[:500]
    n = 0
    for m in session.scalars(select(FaqMiss).where(FaqMiss.resolved.is_(False), FaqMiss.normalized == norm)):
        m.resolved = True
        n += 1
    return n


def _validate_phrase(phrase: str, field: str = "phrase") -> str:
    phrase = " ".join((phrase or "").split())
    if not phrase:
        raise KBEditError(f"{field} is required", field)
    if len(phrase) > 200:
        raise KBEditError(f"{field} must be at most 200 characters", field)
    return phrase


def _write_checked(path: Path, new_text: str) -> None:
    """Write atomically, then load the whole knowledge base; roll back on error."""
    old = path.read_text(encoding="utf-8") if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".console-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new_text)
    os.replace(tmp, path)
    try:
        load(path.parent)
    except RulesError as exc:
        if old is None:
            path.unlink()
        else:
            path.write_text(old, encoding="utf-8")
        raise KBEditError(f"the knowledge base would not load: {exc}", "phrase") from None


def add_phrasing(entry_id: str, phrase: str) -> str:
    """Insert `phrase` into entry `entry_id`'s questions; returns the file name."""
    phrase = _validate_phrase(phrase)
    with _write_lock:
        kb_entries = {e.id: e for e in entries()}
        entry = kb_entries.get(entry_id)
        if entry is None:
            raise KBEditError(f"no entry {entry_id!r}", "entry_id")
        if phrase in entry.questions:
            raise KBEditError("this phrasing is already in the entry", "phrase")
        path = data_dir() / entry.file
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        start = next((i for i, ln in enumerate(lines) if re.match(rf"^\s*-\s+id:\s*['\"]?{re.escape(entry_id)}['\"]?\s*$", ln)), None)
        if start is None:
            raise KBEditError(f"entry {entry_id!r} is not written in block style in {entry.file}", "entry_id")
        q = next((i for i in range(start + 1, len(lines)) if re.match(r"^\s*questions:\s*$", lines[i])
                  or re.match(r"^\s*-\s+id:", lines[i])), None)
        if q is None or not re.match(r"^\s*questions:\s*$", lines[q]):
            raise KBEditError(f"entry {entry_id!r} has no block `questions:` list in {entry.file}", "entry_id")
        last, indent = q, None
        for i in range(q + 1, len(lines)):
            m = re.match(r"^(\s*)-\s", lines[i])
            if m and (indent is None or m.group(1) == indent):
                indent, last = m.group(1), i
            elif lines[i].strip() == "" or lines[i].lstrip().startswith("#"):
                continue
            else:
                break
        if indent is None:
            raise KBEditError(f"entry {entry_id!r} has an empty questions list", "entry_id")
        nl = "" if lines[last].endswith("\n") else "\n"
        lines.insert(last + 1, f"{nl}{indent}- {json.dumps(phrase, ensure_ascii=False)}\n")
        _write_checked(path, "".join(lines))
    return entry.file


def add_entry(entry_id: str, title: str, questions: list[str], answer: str, tags: list[str]) -> str:
    """Append a new entry to console_added.yaml; returns the file name."""
    import yaml

    if not re.match(r"^[a-z0-9][a-z0-9_-]{1,63}$", entry_id or ""):
        raise KBEditError("id must be lower-case letters, digits, '-' or '_' (2-64 characters)", "entry_id")
    title = (title or "").strip()
    if not title or len(title) > 64:
        raise KBEditError("title is required (at most 64 characters)", "title")
    qs = [_validate_phrase(q, "questions") for q in questions if q and q.strip()]
    if len(qs) < 2:
        raise KBEditError("give at least two phrasings of the question", "questions")
    answer = " ".join((answer or "").split())
    if not answer or len(answer) > 400:
        raise KBEditError("answer is required (at most 400 characters; owners read it on a phone)", "answer")
    tags = [t.strip() for t in tags if t and t.strip()] or [title]
    with _write_lock:
        if entry_id in {e.id for e in entries()}:
            raise KBEditError(f"id {entry_id!r} is already used", "entry_id")
        path = data_dir() / CONSOLE_FILE
        text = path.read_text(encoding="utf-8") if path.exists() else (
            "# Entries added from the manager's console (bot/console/kb_queries.py).\n"
            "# Same format as the other files; edit freely.\nentries:\n")
        block = yaml.safe_dump([{"id": entry_id, "title": title, "questions": qs, "answer": answer, "tags": tags,
                                 "source": "控制台添加"}], allow_unicode=True, sort_keys=False, indent=2, width=1000)
        block = "".join("  " + ln if ln.strip() else ln for ln in block.splitlines(keepends=True))
        if text.rstrip().endswith("entries: []"):
            text = text.rstrip()[: -len("[]")].rstrip() + "\n"
        _write_checked(path, text + ("" if text.endswith("\n") else "\n") + block)
    return CONSOLE_FILE


# --- page ---------------------------------------------------------------------------------------------

@bp.get("/kb")
@page("staff")
def kb():
    q = (request.args.get("q") or "").strip()[:64]
    misses = miss_rows(g.db, show_all=bool(request.args.get("all")))
    ents = entries(q or None)
    titles = {e.id: e.title for e in entries()}  # entries are chosen by title; the id stays the form value
    return render_template("kb.html", q=q, entries=ents[:200], total=len(ents), misses=misses, titles=titles,
                           all_ids=sorted(titles, key=lambda i: titles[i]), show_all=bool(request.args.get("all")))


def _on_miss(view: Callable[[FaqMiss], object]) -> Callable:
    """A view of one unanswered question (`miss_id` in the URL) that gets the FaqMiss itself;
    one that no longer exists sends the supervisor back to the page saying so."""
    @functools.wraps(view)
    def wrapper(miss_id: int):
        miss = g.db.get(FaqMiss, miss_id)
        if miss is None:
            flash("没有这条未回答的问题", "error")
            return redirect(url_for("console.kb"))
        return view(miss)
    return wrapper


def _kept_from_miss(miss: FaqMiss, write: Callable[[], str], action: str, target: str, detail: dict,
                    said: Callable[[str, int], str]):
    """Keep a KB edit made from `miss`: `write()` saves it and returns the file it went to (a
    refused edit goes back to the miss, saying why); then every miss with the same text is
    resolved, the edit audited and `said(file, resolved)` shown."""
    try:
        file = write()
    except KBEditError as exc:
        flash(f"未保存：{exc}", "error")
        return redirect(url_for("console.kb") + f"#miss-{miss.id}")
    n = resolve_misses(g.db, miss.text)
    audit(g.db, g.principal, action, target, {**detail, "file": file, "miss": miss.id})
    flash(said(file, n), "ok")
    return redirect(url_for("console.kb"))


@bp.post("/kb/misses/<int:miss_id>/phrasing")
@page("supervisor")
@_on_miss
def kb_add_phrasing(miss: FaqMiss):
    entry_id = (request.form.get("entry_id") or "").strip()
    phrase = request.form.get("phrase") or miss.text
    return _kept_from_miss(
        miss, lambda: add_phrasing(entry_id, phrase), "faq.add_phrasing", f"faq:{entry_id}", {"phrase": phrase},
        lambda file, n: f"已把「{phrase}」加入 {entry_id}（{file}），{n} 条未回答问题已标记解决。机器人几秒内生效。")


@bp.post("/kb/misses/<int:miss_id>/entry")
@page("supervisor")
@_on_miss
def kb_add_entry(miss: FaqMiss):
    f = request.form
    questions = [miss.text] + (f.get("questions") or "").splitlines()
    return _kept_from_miss(
        miss, lambda: add_entry((f.get("entry_id") or "").strip(), f.get("title") or "", questions,
                                f.get("answer") or "", (f.get("tags") or "").replace("，", ",").split(",")),
        "faq.add_entry", f"faq:{f.get('entry_id')}", {},
        lambda file, n: f"已新增条目 {f.get('entry_id')}（{file}），{n} 条未回答问题已标记解决。")


@bp.post("/kb/misses/<int:miss_id>/dismiss")
@page("supervisor")
def kb_dismiss(miss_id: int):
    miss = g.db.get(FaqMiss, miss_id)
    if miss is not None:
        n = resolve_misses(g.db, miss.text)
        audit(g.db, g.principal, "faq.dismiss_miss", f"miss:{miss_id}", {"count": n})
        flash(f"已忽略 {n} 条", "ok")
    return redirect(url_for("console.kb"))
