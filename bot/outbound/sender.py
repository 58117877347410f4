"""Send one outbox row: claim it, render its kind into an API call, respect the
rate limits, send, and record what happened.

States: queued -> sent | failed (retry at next_attempt_at) -> ... -> dead, and
`unknown`: the platform may have delivered it and we cannot tell (see
"Unknown outcomes" below and docs/DEV_NOTES.md).
The row is claimed with a conditional UPDATE that moves next_attempt_at one
lease ahead, so two jobs for the same row (a re-queue by the sweeper, a retried
rq job) cannot both send it, and a worker that dies mid-send only delays the
row until the lease runs out, when the sweeper re-queues it. Retries are not
rq-scheduled (workers run without rq's scheduler): the row's next_attempt_at is
set and `bot/sweeper.py` re-queues it once due.
"""
from __future__ import annotations

import html
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable
from urllib.parse import quote

from redis.exceptions import RedisError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot import metrics
from bot.outbound import outbox, ratelimit
from bot.outbound.clients import (ApiError, NotConfigured, PlatformError, TransportError, WeChatClient,
                                  WeComClient, get_wechat_client, get_wecom_client)
from bot.outbound.options import OutboundOptions, get_options
from bot.outbound.tokens import TokenUnavailable
from ground import clock
from ground.config import get_settings
from handlers.message import Push
from store.db import session_scope
from store.models import OutboxMessage, Owner, Staff

log = logging.getLogger(__name__)

# Worth another try later: the platform is busy or limiting us, or the token
# was refused twice in a row (a refresh race, not the message's fault).
RATE_LIMIT_ERRCODES = frozenset({45009, 45011, 45033, 45047, 45039})
TRANSIENT_ERRCODES = RATE_LIMIT_ERRCODES | {-1, 40001, 42001, 40014}
# Everything else (45015 outside the 48 h window, 40003 / 81013 unknown user,
# 43004 unsubscribed, 40037 template, 44004 empty, ...) will fail the same way
# again: dead at once, recorded and reported.

TOKEN_PATHS = frozenset({"/cgi-bin/token", "/cgi-bin/stable_token", "/cgi-bin/gettoken"})
REPORT_SOURCE = "outbox-report"  # reports about failed reports are never sent (no loops)
WECOM_TEXT_LIMIT = 2048  # bytes, message/send text
# WeCom drops an identical message to the same member within this interval when
# asked to: a retry after a time-out (the first try may have arrived) cannot
# reach the member twice.
DUPLICATE_CHECK_S = 600


# --- Unknown outcomes ---------------------------------------------------------------------
# A request that went out and got no answer (read time-out, connection dropped
# mid-answer), or a worker that died during the call, may have been delivered.
# Sending it again is only safe where the platform drops the duplicate: WeCom's
# message/send with enable_duplicate_check, within DUPLICATE_CHECK_S of the first
# try. Everything else (the Official Account's custom/send and template/send,
# appchat, card updates) is held in state `unknown`, never re-sent by itself, and
# reported to staff with the content, so they check with the owner: no duplicate,
# and no reply dropped without a person knowing.
INFLIGHT = "in flight"  # last_error while a call is out: found again by the next claim = the worker died
DEDUP_SAFE_KINDS = frozenset({"text", "markdown", "textcard", "template_card", "group_task"})
UNKNOWN_RETRY_MAX_S = 30.0  # retries of an unknown WeCom send come soon, well inside the window
UNKNOWN_REPORT_SOURCE = REPORT_SOURCE


class RenderError(ValueError):
    """The row's payload does not fit its kind (a producer bug): not retried."""


@dataclass
class Row:
    id: int
    channel: str
    kind: str
    recipient: str
    payload: dict
    attempts: int
    source: str | None
    window_start: float | None  # OA: when the owner last wrote (48 h customer-service window)
    inflight: bool = False  # the previous attempt never came back (its worker died mid-call)


@dataclass
class Plan:
    limits: list[ratelimit.Limit]
    call: Callable[[], dict]


# --- rendering: push kind -> API call ------------------------------------------------------

def _need(payload: dict, key: str, kind: str) -> Any:
    value = payload.get(key)
    if value in (None, "", {}, []):
        raise RenderError(f"{kind} push needs payload[{key!r}]")
    return value


def _users(recipient: str) -> list[str]:
    # DEV_NOTES: template_card recipients are "a|b|c", update_card recipients comma-separated.
    return [u.strip() for u in recipient.replace(",", "|").split("|") if u.strip()]


def _truncate_bytes(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "…"


def group_task_text(row_id: int, payload: dict, public_url: str) -> str:
    """The app message a staff member gets for a post only they can make in a customer group."""
    group_id = _need(payload, "group_id", "group_task")
    text = _need(payload, "text", "group_task")
    link = f"{public_url}/sidebar?group={quote(str(group_id), safe='')}&task={row_id}"
    head = f"【待发群消息】请在客户群「{payload.get('group_name') or group_id}」发送以下内容"
    if payload.get("reason"):
        head += f"\n原因：{payload['reason']}"
    tail = f'\n<a href="{html.escape(link)}">在侧边栏打开并一键发送</a>'
    budget = WECOM_TEXT_LIMIT - len((head + "\n——\n" + "\n——" + tail).encode())
    return f"{head}\n——\n{_truncate_bytes(str(text), budget)}\n——{tail}"


def render(row: Row, opts: OutboundOptions) -> Plan:
    """The API call (and the rate limits it must pass) for one row."""
    p = row.payload or {}
    if row.channel == "mp":
        client: WeChatClient = get_wechat_client()
        if row.kind == "text":
            content = _need(p, "content", "text")
            return Plan(ratelimit.mp_cs_limits(row.recipient, row.window_start),
                        lambda: client.send_text(row.recipient, content))
        if row.kind == "template":
            template_id, data = _need(p, "template_id", "template"), _need(p, "data", "template")
            return Plan([], lambda: client.send_template(row.recipient, template_id, data, p.get("url"),
                                                         p.get("miniprogram")))
        raise RenderError(f"kind {row.kind!r} cannot be sent on channel mp")
    if row.channel != "wecom":
        raise RenderError(f"unknown channel {row.channel!r}")
    wc: WeComClient = get_wecom_client()
    users = _users(row.recipient)
    dup = {"duplicate_check_s": DUPLICATE_CHECK_S}
    if row.kind in ("text", "markdown"):
        # Over 2,048 bytes WeCom refuses the whole message (45002): better cut than lost.
        content = _truncate_bytes(str(_need(p, "content", row.kind)), WECOM_TEXT_LIMIT)
        return Plan(ratelimit.wecom_message_limits(users), lambda: wc.send(users, row.kind, {"content": content}, **dup))
    if row.kind == "textcard":
        card = {k: p[k] for k in ("title", "description", "url", "btntxt") if p.get(k)}
        for key in ("title", "description", "url"):
            _need(card, key, "textcard")
        card["title"] = _truncate_bytes(str(card["title"]), 128)
        card["description"] = _truncate_bytes(str(card["description"]), 512)
        return Plan(ratelimit.wecom_message_limits(users), lambda: wc.send(users, "textcard", card, **dup))
    if row.kind == "template_card":
        card = _need(p, "card", "template_card")
        return Plan(ratelimit.wecom_message_limits(users), lambda: wc.send_template_card(users, card, **dup))
    if row.kind == "group_task":
        text = group_task_text(row.id, p, opts.public_url)
        return Plan(ratelimit.wecom_message_limits(users), lambda: wc.send_text(users, text, **dup))
    if row.kind == "update_card":
        code = _need(p, "response_code", "update_card")
        if not isinstance(p.get("button"), dict) and not isinstance(p.get("template_card"), dict):
            raise RenderError("update_card push needs payload['button'] or payload['template_card']")
        return Plan(ratelimit.wecom_api_limits("update_template_card"),
                    lambda: wc.update_template_card(users, code, button=p.get("button"),
                                                    template_card=p.get("template_card")))
    if row.kind == "appchat":
        msgtype = p.get("msgtype") or "text"
        body = p.get(msgtype) if isinstance(p.get(msgtype), dict) else {"content": _need(p, "content", "appchat")}
        return Plan(ratelimit.wecom_api_limits("appchat/send"), lambda: wc.appchat_send(row.recipient, msgtype, body))
    raise RenderError(f"kind {row.kind!r} cannot be sent on channel wecom")


# --- state changes ------------------------------------------------------------------------

def backoff_s(attempt: int, opts: OutboundOptions) -> float:
    """Exponential with equal jitter: spreads a burst of failures instead of retrying in lock-step."""
    delay = min(opts.backoff_max_s, opts.backoff_base_s * (2 ** max(0, attempt - 1)))
    return delay / 2 + random.uniform(0, delay / 2)


# Core statements on the outbox table, not ORM ones: a campaign sends tens of thousands of
# rows and each costs a claim and two writes; the ORM's bulk-update and identity-map paths
# were over a third of the sender's CPU (bench/fanout.py, py-spy).
_OUTBOX = OutboxMessage.__table__
_CLAIM_COLUMNS = (_OUTBOX.c.id, _OUTBOX.c.channel, _OUTBOX.c.kind, _OUTBOX.c.recipient, _OUTBOX.c.payload,
                  _OUTBOX.c.attempts, _OUTBOX.c.source, _OUTBOX.c.state, _OUTBOX.c.last_error)


def _set(row_id: int, **values: Any) -> None:
    with session_scope() as s:
        s.connection().execute(_OUTBOX.update().where(_OUTBOX.c.id == row_id).values(**values))


def _claim(outbox_id: int, now: datetime, opts: OutboundOptions) -> Row | str:
    with session_scope() as s:
        conn = s.connection()
        row = conn.execute(select(*_CLAIM_COLUMNS).where(_OUTBOX.c.id == outbox_id)).first()
        if row is None:
            return "missing"
        if row.state in ("sent", "dead", "unknown"):
            return f"already {row.state}"
        claimed = conn.execute(_OUTBOX.update().where(
            _OUTBOX.c.id == outbox_id, _OUTBOX.c.state.in_(("queued", "failed")),
            or_(_OUTBOX.c.next_attempt_at.is_(None), _OUTBOX.c.next_attempt_at <= now),
        ).values(next_attempt_at=now + timedelta(seconds=opts.lease_s))).rowcount
        if not claimed:
            return "not due"
        window_start = None
        if row.channel == "mp" and row.kind == "text":
            last = s.scalar(select(Owner.last_inbound_at).where(Owner.openid == row.recipient))
            window_start = last.timestamp() if last else None
        return Row(row.id, row.channel, row.kind, row.recipient, dict(row.payload or {}), row.attempts,
                   row.source, window_start, inflight=(row.last_error or "").startswith(INFLIGHT))


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.errcode} {exc.errmsg} ({exc.path})"[:2000]
    return f"{type(exc).__name__}: {exc}"[:2000]


_unconfigured_said: set[str] = set()


def _say_unconfigured_once(channel: str, exc: BaseException) -> None:
    # A demo or a half-configured install sends nothing on that channel: one line
    # per process says so; each row still records "not configured" as its error.
    if channel in _unconfigured_said:
        log.debug("%s not configured: message recorded as not sent", channel)
        return
    _unconfigured_said.add(channel)
    log.warning("%s sending is not configured (%s): its messages are recorded as 'not configured' and not sent",
                channel, exc)


def unconfigured_channels() -> list[str]:
    """The channels that cannot send with the current settings, with what they need (for start-up banners)."""
    st = get_settings()
    out = []
    if not (st.wechat.app_id and st.wechat.secret):
        out.append("公众号 OA (WECHAT_APPID, WECHAT_SECRET)")
    if not (st.wecom.app_id and st.wecom.secret and st.wecom.agent_id):
        out.append("企业微信 WeCom (WECOM_CORP_ID, WECOM_SECRET, WECOM_AGENT_ID)")
    return out


def send_one(outbox_id: int) -> str:
    """Send one outbox row; returns what happened: sent / retry / dead / unknown /
    deferred / not due / already sent / already dead / already unknown / missing.
    Safe to call twice."""
    opts = get_options()
    now = clock.now()
    claimed = _claim(outbox_id, now, opts)
    if isinstance(claimed, str):
        return claimed
    row = claimed
    channel = row.channel
    if row.inflight:
        # The last try went out and its worker never recorded the answer: maybe delivered.
        outcome = _unknown(row, row.attempts + 1, now, "the worker sending it stopped mid-call", opts)
        if outcome != "retry now":
            return outcome
        row.inflight = False  # sending again now, as a new attempt
    try:
        plan = render(row, opts)
    except NotConfigured as exc:
        # Nothing to retry until someone configures the channel; no report (it could not be sent either).
        _set(row.id, state="dead", last_error=f"not configured: {exc}", attempts=row.attempts + 1)
        metrics.OUTBOUND.labels(channel, "unconfigured").inc()
        _say_unconfigured_once(channel, exc)
        return "dead"
    except RenderError as exc:
        return _dead(row, now, str(exc), errcode="render")
    except Exception as exc:  # a bug must not leave the row claimed and re-sent forever
        log.exception("rendering outbox %s failed", row.id)
        return _dead(row, now, f"render: {type(exc).__name__}: {exc}", errcode="render")

    try:
        wait = ratelimit.acquire_blocking(plan.limits, opts.inline_wait_s)
    except RedisError as exc:  # fail open: a Redis outage must not stop every message
        log.warning("rate limiter unavailable (%s); sending outbox %s unchecked", exc, row.id)
        wait = 0.0
    if wait > 0:
        # Deferred, not dropped, and no attempt used: the message did nothing wrong.
        # Capped so an OA window quota is re-checked after the owner may have written again.
        delay = min(wait, 3600.0) + random.uniform(0, min(wait, 3600.0) * 0.1)
        _set(row.id, next_attempt_at=clock.now() + timedelta(seconds=delay))
        metrics.OUTBOUND.labels(channel, "deferred").inc()
        return "deferred"

    attempt = row.attempts + 1
    _set(row.id, last_error=f"{INFLIGHT} since {clock.now().isoformat()} (attempt {attempt})")
    try:
        answer = plan.call()
    except ApiError as exc:
        # A token endpoint refusing (wrong secret, IP not allowed) is a set-up problem, not the message's.
        if exc.errcode in TRANSIENT_ERRCODES or exc.path in TOKEN_PATHS:
            return _retry(row, attempt, now, exc, opts)
        return _dead(row, now, _error_text(exc), errcode=str(exc.errcode), attempts=attempt)
    except TransportError as exc:
        if outcome_unknown(exc):
            result = _unknown(row, attempt, now, _error_text(exc), opts)
            return "retry" if result == "retry now" else result
        return _retry(row, attempt, now, exc, opts)
    except (TokenUnavailable, RedisError) as exc:
        return _retry(row, attempt, now, exc, opts)
    except PlatformError as exc:
        return _retry(row, attempt, now, exc, opts)
    except Exception as exc:  # unexpected: counted as an attempt, so a poison row ends up dead
        log.exception("sending outbox %s failed unexpectedly", row.id)
        return _retry(row, attempt, now, exc, opts)

    values: dict[str, Any] = {"state": "sent", "sent_at": clock.now(), "attempts": attempt, "last_error": None}
    invalid = answer.get("invaliduser")
    if invalid:  # partly delivered: keep who was missed
        values["last_error"] = f"invaliduser: {invalid if isinstance(invalid, str) else '|'.join(invalid)}"
    result = {k: answer[k] for k in ("msgid", "response_code") if answer.get(k)}
    if result:
        # response_code of a callback card allows one update_template_card (72 h); keep it with the row.
        values["payload"] = {**row.payload, "_result": result}
    _set(row.id, **values)
    metrics.OUTBOUND.labels(channel, "sent").inc()
    return "sent"


def outcome_unknown(exc: TransportError) -> bool:
    """The request reached the platform and no answer came back: it may have been
    delivered. A refused or timed-out connection, an HTTP error, a token call: it was not."""
    import requests

    if exc.path in TOKEN_PATHS:
        return False
    cause = exc.__cause__
    if isinstance(cause, requests.ConnectTimeout):
        return False  # never connected
    if exc.kind == "timeout":
        return True
    if isinstance(cause, requests.ConnectionError) and not isinstance(cause, requests.ConnectTimeout):
        text = str(cause)
        return "Connection aborted" in text or "RemoteDisconnected" in text or "reset" in text.lower()
    return isinstance(cause, requests.exceptions.ChunkedEncodingError)


def _unknown(row: Row, attempt: int, now: datetime, error: str, opts: OutboundOptions) -> str:
    """What to do with a send that may have been delivered (see "Unknown outcomes").

    Returns "retry now" (the caller sends again at once: only for a dead worker's row,
    safe to repeat), "retry" (scheduled soon), or "unknown" (held, staff told)."""
    settings = get_settings()
    first = float(row.payload.get("_unknown_since") or now.timestamp())
    margin = opts.http_timeout_s + UNKNOWN_RETRY_MAX_S + 30
    if (row.channel == "wecom" and row.kind in DEDUP_SAFE_KINDS and attempt < settings.outbox_max_attempts
            and now.timestamp() - first + margin < DUPLICATE_CHECK_S):
        # WeCom drops the same message to the same member within DUPLICATE_CHECK_S of the first:
        # the repeat cannot reach anyone twice.
        if row.inflight:  # found at the claim: this worker sends it again at once
            row.payload["_unknown_since"] = first
            row.attempts = attempt
            _set(row.id, payload=row.payload, attempts=attempt)
            return "retry now"
        delay = min(backoff_s(attempt, opts), UNKNOWN_RETRY_MAX_S)
        _set(row.id, state="failed", attempts=attempt, last_error=f"outcome unknown, retried safely: {error}"[:2000],
             payload={**row.payload, "_unknown_since": first}, next_attempt_at=clock.now() + timedelta(seconds=delay))
        metrics.OUTBOUND.labels(row.channel, "retry").inc()
        log.info("outbox %s attempt %d: outcome unknown (%s); WeCom drops duplicates, retry in %.1fs",
                 row.id, attempt, error, delay)
        return "retry"
    _set(row.id, state="unknown", attempts=attempt, last_error=f"outcome unknown, not re-sent: {error}"[:2000],
         payload={**row.payload, "_unknown_since": first})
    metrics.OUTBOUND.labels(row.channel, "unknown").inc()
    log.warning("outbox %s (%s/%s) outcome unknown (%s): held, not re-sent; staff told", row.id, row.channel,
                row.kind, error)
    if row.source != REPORT_SOURCE:
        try:
            report_unknown(row, error)
        except Exception:  # the row's state is the record; a failed report must not hide it
            log.exception("could not report unknown outbox %s to staff", row.id)
    return "unknown"


def report_unknown(row: Row, error: str) -> int | None:
    """Tell supervisors and managers, one report per message: it may or may not have
    arrived, we did not send it again, here is what it said."""
    def compose(s: Session) -> tuple[str, str]:
        who = row.recipient
        if row.channel == "mp":
            owner = s.scalar(select(Owner).where(Owner.openid == row.recipient))
            who = f"{owner.name}（{owner.room or '未绑定房号'}）" if owner else "业主"
        text = (f"【消息可能未送达】\n对象：{who}（{row.channel}/{row.kind}）\n来源：{row.source or '-'}\n"
                f"平台未答复，可能已送达；为免重复未重发。请核实，如未收到请人工联系。\n"
                f"内容：{_preview(row, 200)}\n编号：outbox {row.id}")
        return text, f"report:unknown:{row.id}"

    return _tell_supervisors(row, "outcome unknown", compose)


def _preview(row: Row, limit: int) -> str:
    return str(row.payload.get("content") or row.payload.get("text") or row.payload.get("title") or row.kind)[:limit]


def _tell_supervisors(row: Row, what: str, compose: Callable[[Session], tuple[str, str]]) -> int | None:
    """One WeCom text about `row` to every active supervisor and manager;
    `compose(session)` gives its text and dedup key. The report's id, or None."""
    settings = get_settings()
    if not (settings.wecom.app_id and settings.wecom.secret and settings.wecom.agent_id):
        log.warning("outbox %s %s and WeCom is not configured: no staff report", row.id, what)
        return None
    with session_scope() as s:
        staff = list(s.scalars(select(Staff.userid).where(
            Staff.role.in_(("supervisor", "manager")), Staff.active.is_(True)).order_by(Staff.id)))
        if not staff:
            log.warning("outbox %s %s and no supervisor or manager to tell", row.id, what)
            return None
        text, key = compose(s)
        added = outbox.add(s, Push(channel="wecom", recipient="|".join(staff), kind="text",
                                   payload={"content": text}, dedup_key=key[:128], priority=1, source=REPORT_SOURCE))
        report_id = added.id if added is not None else None
    if report_id is not None:
        outbox.queue_send([report_id])
    return report_id


def _retry(row: Row, attempt: int, now: datetime, exc: BaseException, opts: OutboundOptions) -> str:
    settings = get_settings()
    if attempt >= settings.outbox_max_attempts:
        return _dead(row, now, f"gave up after {attempt} attempts: {_error_text(exc)}",
                     errcode=str(getattr(exc, "errcode", None) or getattr(exc, "kind", type(exc).__name__)),
                     attempts=attempt)
    delay = backoff_s(attempt, opts)
    _set(row.id, state="failed", attempts=attempt, last_error=_error_text(exc),
         next_attempt_at=clock.now() + timedelta(seconds=delay))
    metrics.OUTBOUND.labels(row.channel, "retry").inc()
    log.info("outbox %s attempt %d failed (%s); retry in %.1fs", row.id, attempt, _error_text(exc), delay)
    return "retry"


def _dead(row: Row, now: datetime, error: str, errcode: str, attempts: int | None = None) -> str:
    values: dict[str, Any] = {"state": "dead", "last_error": error[:2000]}
    if attempts is not None:
        values["attempts"] = attempts
    _set(row.id, **values)
    metrics.OUTBOUND.labels(row.channel, "dead").inc()
    log.warning("outbox %s (%s/%s to %s) dead: %s", row.id, row.channel, row.kind, row.recipient, error)
    if row.source != REPORT_SOURCE:
        try:
            report_to_staff(row, error, errcode)
        except Exception:  # the record is what matters; a failed report must not hide it
            log.exception("could not report dead outbox %s to staff", row.id)
    return "dead"


# --- reporting to staff ---------------------------------------------------------------------

def report_to_staff(row: Row, error: str, errcode: str) -> int | None:
    """Tell supervisors and managers (WeCom text) that a message could not be delivered.

    Deduplicated per error, producer and hour: a campaign hitting 45015 for 500
    owners makes one report, not 500.
    """
    def compose(_s: Session) -> tuple[str, str]:
        text = (f"【消息未送达】\n对象：{row.recipient}（{row.channel}/{row.kind}）\n"
                f"来源：{row.source or '-'}\n原因：{error[:300]}\n内容：{_preview(row, 60)}\n编号：outbox {row.id}")
        hour = clock.local_now().strftime("%Y%m%d%H")
        return text, f"report:{errcode}:{row.source or row.kind}:{hour}"

    return _tell_supervisors(row, "dead", compose)


def send_due(limit: int = 100) -> dict[str, int]:
    """Send rows that are due now, in priority order, in this process (CLI, tests, `guanjia chat`)."""
    now = clock.now()
    with session_scope() as s:
        ids = list(s.scalars(select(OutboxMessage.id).where(
            OutboxMessage.state.in_(("queued", "failed")),
            or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
        ).order_by(OutboxMessage.priority, OutboxMessage.id).limit(limit)))
    counts: dict[str, int] = {}
    for oid in ids:
        result = send_one(oid)
        counts[result] = counts.get(result, 0) + 1
    return counts

