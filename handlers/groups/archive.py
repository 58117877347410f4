"""Reading customer-group messages from WeCom's message archive (会话内容存档).

The only way to read those groups (PLATFORM.md). Records come in sequence
order from an `ArchiveSource`; each becomes a `Message` (channel "archive",
chat vip/building, group_id set) that goes through the same `bot.inbox.accept`
(dedup + inbox row + queue) and router as everything else.

Exactly once across restarts: the cursor (last fully accepted seq) is stored
in `archive_cursor` after each batch is accepted, and the inbox's unique
(channel, dedup_key = msgid) drops anything re-read after a crash between the
two. So a restart neither loses (cursor only moves after acceptance) nor
repeats (the inbox refuses a msgid twice).

Fetching is triggered by the `msgaudit_notify` event and by the scheduler's
periodic `poll_archive()`; a Redis lock keeps two pollers from overlapping.

Sources: `FakeArchiveSource` (tests, `guanjia chat`, demos) and
`FinanceSdkSource`, which loads a PyPI wrapper of WeCom's native SDK
(pyweworkfinance or pywecomarchive) only when GUANJIA_ARCHIVE=sdk, so the
project installs and tests without it.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import threading
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Protocol

from sqlalchemy import select

from ground import clock, keys, ports
from handlers.groups.capability import capability
from handlers.message import Context, Message, Outcome
from store.db import session_scope
from store.models import Group
from store.models.groups import ArchiveCursor

log = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager]


@dataclass
class ArchiveRecord:
    """One decrypted archive record (the fields the bot uses)."""

    seq: int
    msgid: str
    sender: str  # `from`: external_userid of an owner, or a staff userid
    roomid: str  # the group's chat id; empty for 1:1 chats
    msgtype: str = "text"
    content: str = ""
    action: str = "send"  # send / recall / switch
    msgtime_ms: int = 0


class ArchiveSource(Protocol):
    name: str

    def fetch(self, after_seq: int, limit: int) -> list[ArchiveRecord]:
        """Records with seq > after_seq, oldest first, at most `limit`."""


class FakeArchiveSource:
    """Records kept in memory and, when `path` is given, in a JSON-lines file so
    a new instance (a restarted process) sees the same archive."""

    name = "fake"

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self.records: list[ArchiveRecord] = []
        if self.path and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self.records.append(ArchiveRecord(**json.loads(line)))
        self.fetches = 0

    def add(self, sender: str, roomid: str, text: str, msgtype: str = "text", msgtime_ms: int = 0) -> ArchiveRecord:
        with self._lock:
            seq = (self.records[-1].seq if self.records else 0) + 1
            rec = ArchiveRecord(seq=seq, msgid=f"fake-{seq}", sender=sender, roomid=roomid, msgtype=msgtype,
                                content=text, msgtime_ms=msgtime_ms)
            self.records.append(rec)
            if self.path:
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(asdict(rec), ensure_ascii=False) + "\n")
        return rec

    def fetch(self, after_seq: int, limit: int) -> list[ArchiveRecord]:
        self.fetches += 1
        return [r for r in self.records if r.seq > after_seq][:limit]


class FinanceSdkSource:
    """WeCom's finance SDK through a PyPI wrapper, imported on first use.

    Each record's `encrypt_random_key` is RSA-decrypted with the company's
    private key of that `publickey_ver`, then the SDK decrypts the message."""

    name = "wecom"

    def __init__(self, corp_id: str, secret: str, private_keys: dict[int, bytes], timeout_s: int = 5) -> None:
        self.corp_id, self.secret, self.private_keys, self.timeout_s = corp_id, secret, private_keys, timeout_s
        self._sdk = None

    def _load(self):
        if self._sdk is not None:
            return self._sdk
        try:
            from pyweworkfinance import WeWorkFinance  # type: ignore[import-not-found]

            self._sdk = WeWorkFinance(corpid=self.corp_id, secret=self.secret, default_timeout=self.timeout_s)
        except ImportError:
            try:
                import pywecomarchive  # type: ignore[import-not-found]

                self._sdk = pywecomarchive.Client(self.corp_id, self.secret)  # best guess at its entry point
            except ImportError as exc:
                raise RuntimeError("GUANJIA_ARCHIVE=sdk needs `pip install pyweworkfinance` (or pywecomarchive) "
                                   "and WeCom's native library") from exc
        return self._sdk

    def _random_key(self, encrypted: str, version: int) -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        pem = self.private_keys.get(version)
        if pem is None:
            raise RuntimeError(f"no private key for publickey_ver {version} (WECOM_ARCHIVE_PRIVATE_KEY)")
        key = serialization.load_pem_private_key(pem, password=None)
        return key.decrypt(base64.b64decode(encrypted), padding.PKCS1v15()).decode()

    def fetch(self, after_seq: int, limit: int) -> list[ArchiveRecord]:
        sdk = self._load()
        answer = sdk.get_chat_data(seq=after_seq, limit=limit, timeout=self.timeout_s)
        if getattr(answer, "errcode", 0):
            raise RuntimeError(f"GetChatData failed: {answer.errcode} {getattr(answer, 'errmsg', '')}")
        out = []
        for item in answer.chatdata:
            key = self._random_key(item.encrypt_random_key, int(item.publickey_ver))
            decrypt = getattr(sdk, "decrypt_data", None) or getattr(sdk, "DecryptData")
            plain = decrypt(key, item.encrypt_chat_msg)
            data = json.loads(plain if isinstance(plain, str) else getattr(plain, "data", plain))
            text = (data.get("text") or {}).get("content", "") if data.get("msgtype") == "text" else ""
            out.append(ArchiveRecord(seq=int(item.seq), msgid=str(data.get("msgid") or item.msgid),
                                     sender=str(data.get("from") or ""), roomid=str(data.get("roomid") or ""),
                                     msgtype=str(data.get("msgtype") or ""), content=text,
                                     action=str(data.get("action") or "send"),
                                     msgtime_ms=int(data.get("msgtime") or 0)))
        return out


# --- which source ---------------------------------------------------------------------------

_source: ArchiveSource | None = None
_configured = False


def set_source(source: ArchiveSource | None) -> None:
    """Tests and `guanjia chat` install a source; None means "from the environment"."""
    global _source, _configured
    _source, _configured = source, source is not None


def get_source() -> ArchiveSource | None:
    """GUANJIA_ARCHIVE = off (default) / fake (GUANJIA_ARCHIVE_FILE) / sdk
    (WECOM_CORP_ID, WECOM_ARCHIVE_SECRET, WECOM_ARCHIVE_PRIVATE_KEY=pem path,
    WECOM_ARCHIVE_KEY_VERSION)."""
    global _source, _configured
    if _configured:
        return _source
    mode = (os.environ.get("GUANJIA_ARCHIVE") or "off").lower()
    if mode == "fake":
        _source = FakeArchiveSource(os.environ.get("GUANJIA_ARCHIVE_FILE") or None)
    elif mode == "sdk":
        pem_path = os.environ.get("WECOM_ARCHIVE_PRIVATE_KEY")
        secret = os.environ.get("WECOM_ARCHIVE_SECRET")
        corp = os.environ.get("WECOM_CORP_ID")
        if not (pem_path and secret and corp):
            raise RuntimeError("GUANJIA_ARCHIVE=sdk needs WECOM_CORP_ID, WECOM_ARCHIVE_SECRET and "
                               "WECOM_ARCHIVE_PRIVATE_KEY (path to the PEM private key)")
        version = int(os.environ.get("WECOM_ARCHIVE_KEY_VERSION") or 1)
        _source = FinanceSdkSource(corp, secret, {version: Path(pem_path).read_bytes()})
    else:
        _source = None
    _configured = True
    return _source


# --- polling ------------------------------------------------------------------------------------

def _group_kinds(session) -> dict[str, str]:
    return {g.chat_id: g.kind for g in session.scalars(select(Group).where(Group.kind.in_(("vip", "building"))))}


def to_message(rec: ArchiveRecord, kinds: dict[str, str]) -> Message | None:
    """A group text as a Message; None for what the bot does not read (1:1
    chats, unknown or internal rooms, recalls, pictures...)."""
    if rec.action != "send" or rec.msgtype != "text" or not rec.roomid or rec.roomid not in kinds:
        return None
    return Message(channel="archive", sender=rec.sender, chat=kinds[rec.roomid], kind="text", text=rec.content,
                   msg_id=rec.msgid, created_at=rec.msgtime_ms // 1000, group_id=rec.roomid)


def _lock() -> tuple[bool, bool]:
    """(locked, go on): a poll runs alone; with Redis down it runs without the lock,
    because the cursor and the inbox still keep it exactly-once."""
    taken = ports.jobs().try_lock(keys.ARCHIVE_POLL_LOCK, 120)
    if taken is None:
        log.warning("archive poll without lock")
        return False, True
    return taken, taken


def poll_archive(session_factory: SessionFactory | None = None, now: datetime | None = None, *,
                 source: ArchiveSource | None = None, batch: int = 1000, max_batches: int = 20) -> int:
    """Fetch new archive records and accept the group texts; returns how many
    records were read (0 when the archive is off or another poll runs).

    For the scheduler: call every minute or so (`poll_archive()`); WeCom's
    `msgaudit_notify` triggers the same function between polls."""
    source = source or get_source()
    if source is None:
        return 0
    session_factory = session_factory or session_scope
    locked, ok = _lock()
    if not ok:
        return 0
    read = 0
    try:
        for _ in range(max_batches):
            with session_factory() as s:
                cur = s.get(ArchiveCursor, source.name)
                after = cur.seq if cur else 0
                kinds = _group_kinds(s)
            records = source.fetch(after, batch)
            if not records:
                break
            accepted = 0
            for rec in records:
                msg = to_message(rec, kinds)
                if msg is not None and ports.inbox().accept(msg) is not None:
                    accepted += 1
            # Only now does the cursor move: a crash above re-reads the batch and the inbox drops repeats.
            with session_factory() as s:
                cur = s.get(ArchiveCursor, source.name)
                if cur is None:
                    cur = ArchiveCursor(source=source.name, seq=0)
                    s.add(cur)
                cur.seq = max(cur.seq, max(r.seq for r in records))
                cur.updated_at = now or clock.now()
            read += len(records)
            log.info("archive %s: %d records after seq %d, %d accepted", source.name, len(records), after, accepted)
            if len(records) < batch:
                break
    finally:
        if locked:
            ports.jobs().unlock(keys.ARCHIVE_POLL_LOCK)
    return read


def poll_archive_job() -> int:
    """rq entry point (queue "scheduled"): a poll outside any handler's transaction."""
    return poll_archive()


@capability.event("msgaudit_notify")
def on_msgaudit_notify(ctx: Context, msg: Message, _route) -> Outcome:
    """WeCom says new archive records exist (at most every 15 s): queue a poll.

    Not inline: the handler runs inside the worker's transaction, and accepting
    the records writes new inbox rows (SQLite would lock; any DB would couple
    the two). If Redis is down the scheduler's periodic poll catches up."""
    try:
        ports.jobs().enqueue("scheduled", "handlers.groups.archive.poll_archive_job", failure_ttl=86400)
    except Exception as exc:
        log.warning("could not queue an archive poll (%s); the periodic poll will read it", exc)
    return Outcome(intent="event")
