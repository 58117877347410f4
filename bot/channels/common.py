"""What both platforms share: signatures, timestamps, safe XML, refusals."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from bot.queues import get_redis
from ground import keys

log = logging.getLogger(__name__)

# Epoch seconds have 10 digits until the year 2286; a longer run is an attack, and
# int() of it would overflow the float subtraction below (a 500, not a refusal).
_EPOCH = re.compile(r"[0-9]{1,12}")

class Refusal(Exception):
    """A request we will not process; `status` is what the caller can act on."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.status = status
        self.reason = reason  # short, for metrics labels
        self.detail = detail


def sha1_signature(*parts: str) -> str:
    """WeChat's signature: SHA1 of the sorted, concatenated parts."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(expected: str | None, *parts: str) -> None:
    if not expected:
        raise Refusal(403, "missing_signature")
    if not hmac.compare_digest(sha1_signature(*parts), expected.lower()):
        raise Refusal(403, "bad_signature")


def is_epoch(value: str | None) -> bool:
    """1-12 ASCII digits (str.isdigit() also accepts '²' and other digits int() refuses)."""
    return bool(value) and _EPOCH.fullmatch(value) is not None


def check_timestamp(timestamp: str | None, window_s: int, now: float | None = None) -> None:
    if not is_epoch(timestamp):
        raise Refusal(400, "bad_timestamp", repr(timestamp[:20]) if timestamp else repr(timestamp))
    if window_s <= 0:  # GUANJIA_TIMESTAMP_WINDOW_S=0: off, only to replay recorded vectors
        return
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > window_s:
        raise Refusal(403, "stale_timestamp", f"{timestamp} is more than {window_s}s from now")


def parse_xml(body: bytes | str) -> dict[str, str]:
    """Flat dict of the root's children. Entities, DTDs and external references
    are refused by defusedxml; nested elements (ScanCodeInfo...) are flattened
    one level, which is all these platforms send."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise Refusal(400, "xml_forbidden", type(exc).__name__) from None
    except SafeET.ParseError as exc:
        raise Refusal(400, "xml_malformed", str(exc)) from None
    except (ValueError, LookupError) as exc:  # LookupError: <?xml encoding="x-evil"?>
        raise Refusal(400, "xml_malformed", type(exc).__name__) from None
    out: dict[str, str] = {}
    for child in root:
        if len(child):
            for sub in child:
                out.setdefault(f"{child.tag}.{sub.tag}", (sub.text or "").strip())
            out.setdefault(child.tag, "")
        else:
            out[child.tag] = (child.text or "").strip()
    return out


@dataclass(frozen=True)
class ReplayCheck:
    """What the replay check needs to remember of one request: its timestamp+nonce key, the
    digest of its body and how long to keep them. The channel only builds it; the check runs
    in the same Redis round trip as the inbox's first dedup layer (bot/inbox.py::accept), one
    trip instead of two per message (bench/PROFILE.md)."""

    key: str
    digest: str
    ttl_s: int


def replay_check(channel: str, timestamp: str, nonce: str, body: bytes, window_s: int) -> ReplayCheck | None:
    """Refuse a timestamp+nonce already used, within the window, for a different body.

    The URL signature covers only token, timestamp and nonce, so a copied URL
    could carry any body (plain mode). The platform itself re-sends the same
    request when we answer late (three tries, PLATFORM.md): an identical body
    is let through, and the inbox's dedup recognises it, so a retry after a
    failed store is never refused. Redis down: allowed (the signature and the
    timestamp window still hold), logged. None: the window is off (recorded
    vectors), nothing to remember. Checked by `check_replay` or by `inbox.accept`.
    """
    if window_s <= 0:
        return None
    # Kept twice the window: a timestamp stays acceptable from window before to window after it.
    return ReplayCheck(keys.nonce(channel, timestamp, nonce), hashlib.sha256(body).hexdigest()[:32],
                       2 * window_s + 60)


def check_replay(channel: str, timestamp: str, nonce: str, body: bytes, window_s: int) -> None:
    """The replay check on its own (its own round trip): see `replay_check`."""
    check = replay_check(channel, timestamp, nonce, body, window_s)
    if check is None:
        return
    try:
        r = get_redis()
        if r.set(check.key, check.digest, nx=True, ex=check.ttl_s):
            return
        seen = r.get(check.key)
    except Exception as exc:
        log.warning("redis unavailable for the nonce check (%s); signature and window still checked",
                    type(exc).__name__)
        return
    seen = seen.decode() if isinstance(seen, bytes) else seen
    if seen != check.digest:
        raise replayed(timestamp)


def replayed(timestamp: str) -> Refusal:
    return Refusal(403, "replayed_nonce", f"timestamp {timestamp} and this nonce were already used")


def require(fields: dict[str, str], *names: str) -> None:
    missing = [n for n in names if not fields.get(n)]
    if missing:
        raise Refusal(400, "missing_field", ", ".join(missing))


def text_reply_xml(to_user: str, from_user: str, content: str, created: int | None = None) -> str:
    from wechatpy.replies import TextReply

    return TextReply(target=to_user, source=from_user, content=content,
                     time=created or int(time.time())).render()
