"""The knowledge base: YAML files under faq/data/, validated on load, reloaded
when a file changes (mtime), without a restart.

A manager edits the files; a mistake must say where it is, so every error
names the file, the entry and the field. A broken edit never takes the bot
down: the last good knowledge base stays in service and the error is logged.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ground.rules import RulesError, read_yaml, register_check

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
LEXICON_FILE = "lexicon.yaml"
# Read by faq.normalize at start (what clean() does), not a file of entries, not reloaded.
DIALECT_FILE = "dialect.yaml"
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
_CJK_SPACE = re.compile(r"(?<=[^\x00-\x7f])\s+|\s+(?=[^\x00-\x7f])")
# How often (seconds) a process looks at the files' mtimes: a stat per file is
# cheap but not free on the hot path.
CHECK_EVERY = 2.0


KBError = RulesError  # the one error type of rule files (ground/rules.py)


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    questions: tuple[str, ...]
    answer: str
    tags: tuple[str, ...]
    source: str
    file: str = ""


@dataclass
class Lexicon:
    canonical: dict[str, list[str]] = field(default_factory=dict)
    user_words: list[str] = field(default_factory=list)
    stopwords: set[str] = field(default_factory=set)
    # English words -> the KB's Chinese word (faq.normalize.EnglishGloss), and English
    # function words dropped before matching.
    english: dict[str, list[str]] = field(default_factory=dict)
    english_stopwords: list[str] = field(default_factory=list)


@dataclass
class KnowledgeBase:
    entries: list[Entry]
    lexicon: Lexicon
    mtimes: dict[str, float]
    by_id: dict[str, Entry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {e.id: e for e in self.entries}


def _err(file: str, entry: str | None, fld: str | None, msg: str) -> KBError:
    where = file
    if entry is not None:
        where += f": entry {entry}"
    if fld is not None:
        where += f": field {fld}"
    return KBError(f"{where}: {msg}")


def _str_list(file: str, eid: str, name: str, value, min_len: int) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) < min_len:
        raise _err(file, eid, name, f"must be a list of at least {min_len} text(s)")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool):  # YAML reads a bare yes/no/on/off as true/false
            raise _err(file, eid, f"{name}[{i}]", f"reads as {v}: put it in quotes ('{'yes' if v else 'no'}')")
        if not isinstance(v, (str, int, float)) or not str(v).strip():
            raise _err(file, eid, f"{name}[{i}]", "must be non-empty text")
        out.append(str(v).strip())
    return tuple(out)


def parse_entries(file: str, data) -> list[Entry]:
    """Validate one entries file (already parsed YAML)."""
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise _err(file, None, "entries", "the file must hold `entries:` with a list of entries")
    out: list[Entry] = []
    for n, raw in enumerate(data["entries"], 1):
        label = f"#{n}"
        if not isinstance(raw, dict):
            raise _err(file, label, None, "must be a mapping with id, title, questions, answer, tags, source")
        eid = raw.get("id")
        if not isinstance(eid, str) or not _ID.match(eid):
            raise _err(file, label, "id", "must be lower-case letters, digits, '-' or '_' (2-64 chars)")
        unknown = set(raw) - {"id", "title", "questions", "answer", "tags", "source"}
        if unknown:
            raise _err(file, eid, sorted(unknown)[0], "unknown field")
        for name in ("title", "answer", "source"):
            v = raw.get(name)
            if not isinstance(v, str) or not v.strip():
                raise _err(file, eid, name, "is required and must be non-empty text")
        # YAML folding turns line breaks into spaces; Chinese text has none between characters.
        answer = _CJK_SPACE.sub("", " ".join(raw["answer"].split()))
        if len(answer) > 400:
            raise _err(file, eid, "answer", f"is {len(answer)} characters; keep it under 400 (owners read it on a phone)")
        out.append(Entry(
            id=eid, title=raw["title"].strip(),
            questions=_str_list(file, eid, "questions", raw.get("questions"), 2),
            answer=answer, tags=_str_list(file, eid, "tags", raw.get("tags"), 1),
            source=raw["source"].strip(), file=file,
        ))
    return out


def parse_lexicon(file: str, data) -> Lexicon:
    if not isinstance(data, dict):
        raise _err(file, None, None, "must be a mapping with canonical, user_words, stopwords")
    canon = data.get("canonical") or {}
    if not isinstance(canon, dict):
        raise _err(file, None, "canonical", "must map a word to a list of variants")
    for k, v in canon.items():
        _str_list(file, str(k), "canonical", v, 1)
    words = data.get("user_words") or []
    stops = data.get("stopwords") or []
    _str_list(file, None, "user_words", words, 0) if words else None
    english = data.get("english") or {}
    if not isinstance(english, dict):
        raise _err(file, None, "english", "must map a Chinese word to a list of English words or phrases")
    for k, v in english.items():
        _str_list(file, str(k), "english", v, 1)
        not_english = [x for x in v if not re.fullmatch(r"[A-Za-z0-9' _-]+", str(x))]
        if not_english:
            raise _err(file, str(k), "english", f"not an English word or phrase: {not_english[0]!r}")
    e_stops = data.get("english_stopwords") or []
    _str_list(file, None, "english_stopwords", e_stops, 0) if e_stops else None
    return Lexicon(canonical={str(k): [str(x) for x in v] for k, v in canon.items()},
                   user_words=[str(w) for w in words], stopwords={str(s) for s in stops},
                   english={str(k): [str(x) for x in v] for k, v in english.items()},
                   english_stopwords=[str(w) for w in e_stops])


def _files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.glob("*.yaml") if p.is_file() and p.name != DIALECT_FILE)


def load(data_dir: Path = DATA_DIR) -> KnowledgeBase:
    """Read and validate every file; raise KBError on the first problem."""
    entries: list[Entry] = []
    lexicon = Lexicon()
    mtimes: dict[str, float] = {}
    seen: dict[str, str] = {}
    for path in _files(data_dir):
        mtimes[str(path)] = path.stat().st_mtime
        data = read_yaml(path)
        if path.name == LEXICON_FILE:
            lexicon = parse_lexicon(path.name, data)
            continue
        for e in parse_entries(path.name, data):
            if e.id in seen:
                raise _err(path.name, e.id, "id", f"duplicate: also in {seen[e.id]}")
            seen[e.id] = path.name
            entries.append(e)
    if not entries:
        raise KBError(f"{data_dir}: no entries found")
    return KnowledgeBase(entries, lexicon, mtimes)


def changed(kb: KnowledgeBase, data_dir: Path = DATA_DIR) -> bool:
    files = _files(data_dir)
    if {str(p) for p in files} != set(kb.mtimes):
        return True
    return any(os.stat(p).st_mtime != kb.mtimes[str(p)] for p in files)


register_check("faq/data", lambda: load())  # `guanjia check` validates the KB too


class Store:
    """The process's current knowledge base, reloaded when files change."""

    def __init__(self, data_dir: Path = DATA_DIR) -> None:
        self.data_dir = data_dir
        self._kb: KnowledgeBase | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.version = 0  # bumped on every successful (re)load; indexes key on it
        self.last_error: str | None = None

    def get(self) -> KnowledgeBase:
        now = time.monotonic()
        if self._kb is not None and now - self._checked < CHECK_EVERY:
            return self._kb
        with self._lock:
            self._checked = now
            if self._kb is None:
                self._kb = load(self.data_dir)  # first load: an error is fatal, there is nothing to fall back on
                self.version += 1
            elif changed(self._kb, self.data_dir):
                try:
                    self._kb = load(self.data_dir)
                    self.version += 1
                    self.last_error = None
                    log.info("knowledge base reloaded: %d entries", len(self._kb.entries))
                except KBError as exc:
                    # Keep serving the last good one; remember the mtimes so we log once per edit.
                    self.last_error = str(exc)
                    self._kb.mtimes = {str(p): p.stat().st_mtime for p in _files(self.data_dir)}
                    log.error("knowledge base NOT reloaded: %s", exc)
        return self._kb
