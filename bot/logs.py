"""Logging set-up: one line per event, no personal data (the moderation
capability masks phone numbers and ids before logging evidence).

Access logs (gunicorn's `MaskingGunicornLogger`, werkzeug's dev server) carry
URLs, and URLs carry owners' data: the Official Account puts the sender's
`openid` in every webhook URL, console and API searches put names and phone
numbers in `q`. `mask_url` blanks those values before a line is written.
Message bodies are never logged; database errors are logged without their
SQL parameters (`store/db.py`, hide_parameters).
"""
from __future__ import annotations

import logging
import os
import re

_done = False

# Query parameters whose values identify a person or say what they searched for.
SENSITIVE_PARAMS = ("openid", "unionid", "external_userid", "userid", "q", "phone", "name", "room",
                    "code", "access_token", "echostr", "msg_signature", "signature")
_PARAM = re.compile(r"(?i)(?<![A-Za-z0-9_])(" + "|".join(SENSITIVE_PARAMS) + r")=([^&\s\"]*)")


def _mask_value(name: str, value: str) -> str:
    if not value:
        return value
    if name.lower() in ("openid", "unionid", "external_userid", "userid"):
        # A short prefix still lets an operator tell two senders apart in one incident.
        return value[:3] + "***"
    return "***"


def mask_url(text: str) -> str:
    """`/wechat/mp?openid=o6_abc...&timestamp=1` -> `/wechat/mp?openid=o6_***&timestamp=1`."""
    if "=" not in text:
        return text
    return _PARAM.sub(lambda m: f"{m.group(1)}={_mask_value(m.group(1), m.group(2))}", text)


# Platform identities as they really look (an OA openid is 28 characters starting with
# "o"; WeCom external_userids start with wm/wo and run 20+), and mainland mobile numbers.
_IDENTITY = re.compile(r"(?<![A-Za-z0-9_-])(o[A-Za-z0-9_-]{27}|w[mo][A-Za-z0-9_-]{20,40})(?![A-Za-z0-9_-])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_ids(text: str) -> str:
    """Openids, external_userids and mobile numbers starred in a log line."""
    text = _IDENTITY.sub(lambda m: m.group(1)[:3] + "***", text)
    return _MOBILE.sub(r"\1****\2", text)


class MaskIdsFilter(logging.Filter):
    """On the root handlers: whatever a module logs, identities and numbers leave masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let logging report it as usual
            return True
        masked = mask_url(mask_ids(message))
        if masked != message:
            record.msg, record.args = masked, None
        return True


class MaskUrlsFilter(logging.Filter):
    """For loggers that write request lines (werkzeug's dev server)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_url(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_url(a) if isinstance(a, str) else a for a in record.args)
        return True


def setup_logging() -> None:
    global _done
    if _done:
        return
    logging.basicConfig(level=os.environ.get("GUANJIA_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    logging.getLogger("rq.worker").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").addFilter(MaskUrlsFilter())
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskIdsFilter())
    _done = True


try:  # gunicorn is only there in deployments and tests that start it
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # pragma: no cover
    _GunicornLogger = None

if _GunicornLogger is not None:
    class MaskingGunicornLogger(_GunicornLogger):
        """gunicorn's logger with every access-log atom passed through mask_url
        (request line, query string, referer, environ copies of them).
        deploy/gunicorn.conf.py: logger_class = "bot.logs.MaskingGunicornLogger"."""

        def atoms(self, resp, req, environ, request_time):
            atoms = super().atoms(resp, req, environ, request_time)
            return {k: mask_url(v) if isinstance(v, str) else v for k, v in atoms.items()}
