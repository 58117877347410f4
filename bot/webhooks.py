"""The two webhook endpoints. Every refusal is logged with its reason and
answered with a status the caller can act on; never a 500 for bad input."""
from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, current_app, request

from bot import inbox, metrics
from bot.worker import web_ready
from bot.channels.common import Refusal, replayed
from bot.channels.mp import MpChannel
from bot.channels.wecom import WeComChannel

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)
WEBHOOK_PATHS = ("/wechat/mp", "/wecom/app")


class _NoSessionForWebhooks:
    """The app's session interface, skipped for the webhooks: the platforms send no
    cookie, and opening a session (an itsdangerous serializer per request) was measured
    on every message (bench/PROFILE.md)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def open_session(self, app, req):
        if req.path in WEBHOOK_PATHS:
            return None  # Flask then uses a null session and saves nothing
        return self.inner.open_session(app, req)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@bp.record_once
def _skip_sessions(state) -> None:
    state.app.session_interface = _NoSessionForWebhooks(state.app.session_interface)


def _refuse(endpoint: str, exc: Refusal) -> Response:
    metrics.REFUSALS.labels(endpoint, exc.reason).inc()
    log.warning("refused %s from %s: %s", endpoint, request.remote_addr, exc)
    return Response(exc.reason, status=exc.status, mimetype="text/plain")


def _body(settings) -> bytes:
    length = request.content_length
    if length is not None and length > settings.max_body_bytes:
        raise Refusal(413, "body_too_large", f"{length} bytes")
    body = request.stream.read(settings.max_body_bytes + 1)
    if len(body) > settings.max_body_bytes:
        raise Refusal(413, "body_too_large", f"over {settings.max_body_bytes} bytes")
    return body


def _waited_since_sent(args, window_s: int) -> float:
    """Seconds since the platform sent this request, by its signed `timestamp` (whole seconds,
    so never under-counted), as far as it exceeds what this process measured itself.

    Why: under load (a locked database) requests queue for a free thread before Flask sees
    them; a passive reply timed from Flask's start then reaches a platform that has already
    hung up and retried, and the retry is a duplicate: the answer is lost. Counting from the
    platform's send time, such a reply is pushed instead. A clock ahead of the platform's only
    shortens the passive budget (replies are pushed, never lost). With the timestamp window
    off (recorded vectors replayed) the timestamp means nothing and is not used."""
    if window_s <= 0:
        return 0.0
    try:
        return max(0.0, time.time() - int(args.get("timestamp", "")))
    except ValueError:  # already refused by the channel (check_timestamp); never here
        return 0.0


def _serve(endpoint: str, channel) -> Response:
    settings = current_app.config["GUANJIA_SETTINGS"]
    started = time.perf_counter()
    try:
        if channel is None:
            raise Refusal(404, "channel_off", f"{endpoint} is not configured")
        if request.method == "GET":
            return Response(channel.verify_url(request.args), mimetype="text/plain")
        # The replay check is deferred to inbox.accept: one Redis round trip with the dedup.
        inbound = channel.open(request.args, _body(settings), defer_replay=True)
        # A plain text is handled here (bot/tasks.py::handle_in_web); other kinds (images, events:
        # media fetches, cards) and everything when GUANJIA_HANDLE_IN_WEB=0 go to the worker lane.
        # Until this process has loaded its models (bot/worker.py::web_ready) the lane is used too.
        here = settings.handle_in_web and inbound.message.kind == "text" and web_ready()
        try:  # a busy database is waited for within the passive budget (bot/inbox.py)
            accepted = inbox.accept(inbound.message, settings.dedup_ttl_s,
                                    max(settings.passive_budget_s, inbox.MIN_STORE_BUDGET_S), claim=here,
                                    replay=inbound.replay)
        except inbox.StoreUnavailable as exc:  # not stored: not 200, so the platform tries again
            return _refuse(endpoint, Refusal(503, "store_unavailable", str(exc)))
        except inbox.Replayed:  # a copied URL carrying another body (bot/channels/common.py)
            raise replayed(inbound.timestamp) from None
        if accepted.inbox_id is None or not (accepted.queued or accepted.claimed):
            return Response("success", mimetype="text/plain")
        # What is left of the budget: the platform's 5 s include the insert and the time the
        # request waited for a free thread before this function began.
        waited = _waited_since_sent(request.args, settings.timestamp_window_s) if settings.passive_from_timestamp else 0.0
        left = settings.passive_budget_s - max(time.perf_counter() - started, waited)
        if accepted.claimed:
            from bot.tasks import handle_in_web

            replies = handle_in_web(accepted.inbox_id, inbound.message, time.monotonic() + left)
        else:
            replies = inbox.wait_for_reply(accepted.inbox_id, left)
        if not replies:
            return Response("success", mimetype="text/plain")
        # One passive reply per request: join them; the platforms refuse about 2 KB and more.
        text = "\n\n".join(replies)
        if len(text.encode("utf-8")) > 2000:
            text = text.encode("utf-8")[:1990].decode("utf-8", "ignore") + "…"
        return Response(channel.render_reply(inbound, text), mimetype="application/xml")
    except Refusal as exc:
        return _refuse(endpoint, exc)
    finally:
        metrics.REQUEST_LATENCY.labels(endpoint).observe(time.perf_counter() - started)


@bp.route("/wechat/mp", methods=["GET", "POST"])
def wechat_mp() -> Response:
    return _serve("wechat_mp", current_app.config.get("GUANJIA_MP"))


@bp.route("/wecom/app", methods=["GET", "POST"])
def wecom_app() -> Response:
    return _serve("wecom_app", current_app.config.get("GUANJIA_WECOM"))


def make_channels(settings) -> dict:
    return {
        "GUANJIA_MP": MpChannel(settings.wechat, settings.timestamp_window_s) if settings.wechat.enabled else None,
        "GUANJIA_WECOM": (WeComChannel(settings.wecom, settings.timestamp_window_s)
                          if settings.wecom.enabled else None),
    }
