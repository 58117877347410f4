"""What both platforms share: signatures, timestamps, safe XML, refusals."""
from __future__ import annotations

import hashlib
import hmac
import time

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException


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


def check_timestamp(timestamp: str | None, window_s: int, now: float | None = None) -> None:
    if not timestamp or not timestamp.isdigit():
        raise Refusal(400, "bad_timestamp", repr(timestamp))
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
    except ValueError as exc:
        raise Refusal(400, "xml_malformed", str(exc)) from None
    out: dict[str, str] = {}
    for child in root:
        if len(child):
            for sub in child:
                out.setdefault(f"{child.tag}.{sub.tag}", (sub.text or "").strip())
            out.setdefault(child.tag, "")
        else:
            out[child.tag] = (child.text or "").strip()
    return out


def require(fields: dict[str, str], *names: str) -> None:
    missing = [n for n in names if not fields.get(n)]
    if missing:
        raise Refusal(400, "missing_field", ", ".join(missing))


def text_reply_xml(to_user: str, from_user: str, content: str, created: int | None = None) -> str:
    from wechatpy.replies import TextReply

    return TextReply(target=to_user, source=from_user, content=content,
                     time=created or int(time.time())).render()
