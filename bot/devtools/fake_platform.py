"""`guanjia dev fake-platform`: WeChat OA and WeCom HTTP APIs, faked on loopback.

Both platforms are served from one root (their paths do not collide). The fake
answers like the real APIs, errcodes included, so the sender's error handling
is exercised for real:

- tokens are issued here and checked on every call: missing -> 41001, unknown
  -> 40001 (OA) / 40014 (WeCom), expired -> 42001. A new OA `/cgi-bin/token`
  makes the older ones invalid after `token_overlap_s` (5 min, as the real
  one); `stable_token` keeps its token unless `force_refresh`; WeCom `gettoken`
  returns the same token while it is valid.
- users: every openid / userid exists except those starting with `unknown` or
  `invalid`, or listed in config `unknown_users` (OA 40003, WeCom invaliduser /
  81013). OA openids in config `closed_window` get 45015, in `unsubscribed`
  43004 for templates.
- WeCom web sign-in: `/connect/oauth2/authorize` (the open.weixin.qq.com page,
  served here too) redirects to `redirect_uri` with a fresh code for config
  `oauth_authorize_user` and the `state`; `auth/getuserinfo` (and the older
  `user/getuserinfo`) takes those codes and config `oauth_codes`, each once
  (40029 otherwise). `ticket/get?type=agent_config` issues the app's jsapi
  ticket (config `agent_config_ticket` or a random one, kept while valid),
  `get_jsapi_ticket` the company's (config `jsapi_ticket`, the same way).
- WeCom `message/send` keeps per-member counts per app; beyond 30 a minute or
  1,000 an hour (config `per_member_per_minute` / `_per_hour`) the message is
  dropped silently, as the real platform does, and the breach is counted.

- `cgi-bin/media/get` (both platforms, the same path) answers the file with its
  Content-Type: config `media` or a small generated JPEG; 40007 for ids
  starting with `invalid` / `expired`.

Control endpoints (not part of either platform):
  GET /_sent[?path=...]   accepted calls, oldest first: {path, time, query, json, ...}
  DELETE /_sent           forget them
  POST /_faults           {"path", "errcode"|"status"|"delay_s", "times"}; GET lists, DELETE clears
  GET /_stats             calls and errors by path, token calls, rate-limit breaches
  POST /_config           merge settings (see DEFAULT_CONFIG); GET shows them
  POST /_tokens/expire    expire every issued token now (the next call gets 42001)
  POST /_reset            forget everything (records, faults, tokens, stats, config)
  POST /_groupmsg/confirm {"msgid"|"sender", "status"?}: the staff owner confirms a bulk
                          send into customer groups (add_msg_template); get_groupmsg_send_result
                          then reports status 1 (sent) for its groups
"""
from __future__ import annotations

import copy
import json
import logging
import secrets
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, request

log = logging.getLogger(__name__)

DEFAULT_CONFIG: dict[str, Any] = {
    "expires_in": 7200,
    "token_overlap_s": 300,  # an old OA token stays valid this long after a new /cgi-bin/token
    "credentials": {},  # {appid_or_corpid: secret}; empty = any non-empty pair is accepted
    "unknown_users": [],
    "closed_window": [],  # OA openids outside the 48 h customer-service window -> 45015
    "unsubscribed": [],  # OA openids that unfollowed -> 43004 on template messages
    "templates": [],  # OA template ids that exist; empty = any non-empty id
    "mp_cs_per_window": 0,  # >0: customer-service messages per openid before 45047 (0 = off)
    "per_member_per_minute": 30,
    "per_member_per_hour": 1000,
    # WeCom customer groups known to externalcontact/groupchat/get:
    # {chat_id: {"name", "owner", "member_list": [{"userid", "type": 1|2, ...}], "admin_list": [...]}}
    "customer_groups": {},
    # WeCom web sign-in: codes auth/getuserinfo accepts, each once ({code: userid}); others -> 40029.
    "oauth_codes": {},
    # The member /connect/oauth2/authorize signs in (a fresh code for them each time); None -> 400.
    "oauth_authorize_user": None,
    # ticket/get?type=agent_config answers this ticket; None -> a random one, kept while valid.
    "agent_config_ticket": None,
    # get_jsapi_ticket (the company's ticket, for wx.config) answers this one; None -> random, kept while valid.
    "jsapi_ticket": None,
    # Temporary media for cgi-bin/media/get (both platforms): {media_id: {"content_type", "base64"}}.
    # Ids not listed get a small generated JPEG, except those starting with `invalid` or
    # `expired` (40007 invalid media_id, as after the platforms' 3 days).
    "media": {},
}

OA_MSGTYPES = {"text", "image", "voice", "video", "music", "news", "mpnews", "mpnewsarticle", "msgmenu",
               "wxcard", "miniprogrampage"}
WECOM_MSGTYPES = {"text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown",
                  "miniprogram_notice", "template_card"}
# Cards with callbacks get a response_code usable once with update_template_card.
CALLBACK_CARDS = {"button_interaction", "vote_interaction", "multiple_interaction"}
TOKEN_PATHS = {"/cgi-bin/token", "/cgi-bin/stable_token", "/cgi-bin/gettoken"}


class ApiAnswer(Exception):
    """An errcode answer (HTTP 200, as both platforms answer errors)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


@dataclass
class Token:
    value: str
    platform: str  # mp / wecom
    app: str  # appid or corpid
    secret: str
    kind: str  # token / stable / wecom
    expires_at: float
    revoked_at: float | None = None  # replaced: invalid from this moment on


@dataclass
class Fault:
    errcode: int | None = None
    status: int | None = None
    delay_s: float | None = None
    times: int = 1


class FakeState:
    """Everything the fake remembers; one lock, since the server is threaded."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.config: dict[str, Any] = copy.deepcopy(DEFAULT_CONFIG)
            self.sent: list[dict] = []
            # A clear bumps the generation, so a delayed call that started before
            # it cannot land in the next test's record.
            self.generation = 0
            self.faults: dict[str, deque[Fault]] = defaultdict(deque)
            self.tokens: dict[str, Token] = {}
            self.oa_latest: dict[str, str] = {}
            self.oa_stable: dict[str, str] = {}
            self.wecom_tokens: dict[tuple[str, str], str] = {}
            self.calls: Counter[str] = Counter()
            self.errors: Counter[str] = Counter()
            self.faults_fired: Counter[str] = Counter()
            self.member_log: dict[tuple[str, str], deque[float]] = defaultdict(deque)
            self.breaches: list[dict] = []
            self.dropped = 0
            self.used_response_codes: set[str] = set()
            self.issued_response_codes: set[str] = set()
            self.chats: dict[str, dict] = {}
            # Company bulk sends (add_msg_template): msgid -> {"sender", "chat_ids", "status": {chat_id: 0|1|2|3}}
            self.group_msgs: dict[str, dict] = {}
            self.dup_registry: dict[str, float] = {}
            self.cs_counts: Counter[str] = Counter()
            self.msg_seq = 0
            self.oauth_issued: dict[str, str] = {}  # codes handed out by /connect/oauth2/authorize
            self.oauth_used: set[str] = set()
            # (config key of the ticket kind, corpid) -> (ticket, expires_at)
            self.jsapi_tickets: dict[tuple[str, str], tuple[str, float]] = {}

    def clear_sent(self) -> None:
        with self.lock:
            self.sent.clear()
            self.dup_registry.clear()
            self.generation += 1

    # --- tokens ---------------------------------------------------------------

    def _issue(self, platform: str, app: str, secret: str, kind: str) -> Token:
        value = secrets.token_urlsafe(48)
        tok = Token(value, platform, app, secret, kind, time.time() + int(self.config["expires_in"]))
        self.tokens[value] = tok
        return tok

    def _check_credentials(self, app: str, secret: str, platform: str) -> None:
        creds = self.config.get("credentials") or {}
        if creds:
            if app not in creds:
                raise ApiAnswer(40013, "invalid appid" if platform == "mp" else "invalid corpid")
            if creds[app] != secret:
                raise ApiAnswer(40125, "invalid appsecret") if platform == "mp" else ApiAnswer(40001, "invalid secret")

    def oa_token(self, appid: str, secret: str) -> Token:
        with self.lock:
            self._check_credentials(appid, secret, "mp")
            now = time.time()
            old = self.oa_latest.get(appid)
            if old and old in self.tokens and self.tokens[old].revoked_at is None:
                # PLATFORM.md: the old token keeps working for the overlap, then stops.
                self.tokens[old].revoked_at = now + float(self.config["token_overlap_s"])
            tok = self._issue("mp", appid, secret, "token")
            self.oa_latest[appid] = tok.value
            return tok

    def oa_stable_token(self, appid: str, secret: str, force: bool) -> Token:
        with self.lock:
            self._check_credentials(appid, secret, "mp")
            now = time.time()
            cur = self.tokens.get(self.oa_stable.get(appid, ""))
            if cur and not force and cur.revoked_at is None and cur.expires_at > now:
                return cur
            if cur and cur.revoked_at is None:
                cur.revoked_at = now  # force_refresh: the previous one is invalid at once
            tok = self._issue("mp", appid, secret, "stable")
            self.oa_stable[appid] = tok.value
            return tok

    def wecom_token(self, corpid: str, secret: str) -> Token:
        with self.lock:
            self._check_credentials(corpid, secret, "wecom")
            cur = self.tokens.get(self.wecom_tokens.get((corpid, secret), ""))
            if cur and cur.revoked_at is None and cur.expires_at > time.time():
                return cur
            tok = self._issue("wecom", corpid, secret, "wecom")
            self.wecom_tokens[(corpid, secret)] = tok.value
            return tok

    def check_token(self, platform: str, value: str | None) -> Token:
        if not value:
            raise ApiAnswer(41001, "access_token missing")
        invalid = (ApiAnswer(40001, "invalid credential, access_token is invalid or not latest") if platform == "mp"
                   else ApiAnswer(40014, "invalid access_token"))
        with self.lock:
            tok = self.tokens.get(value)
            if tok is None or tok.platform != platform:
                raise invalid
            now = time.time()
            if tok.revoked_at is not None and now >= tok.revoked_at:
                raise invalid
            if now >= tok.expires_at:
                raise ApiAnswer(42001, "access_token expired")
            return tok

    def expire_tokens(self) -> int:
        with self.lock:
            now = time.time()
            for tok in self.tokens.values():
                tok.expires_at = min(tok.expires_at, now - 1)
            return len(self.tokens)

    # --- users, faults, records ---------------------------------------------------

    def user_known(self, user: str) -> bool:
        return bool(user) and not user.startswith(("unknown", "invalid")) and user not in self.config["unknown_users"]

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            queue = self.faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.popleft()
            self.faults_fired[path] += 1
            return fault

    def record(self, generation: int, entry: dict) -> None:
        with self.lock:
            if generation == self.generation:
                self.sent.append(entry)

    def next_msgid(self) -> str:
        with self.lock:
            self.msg_seq += 1
            return f"fake-msg-{self.msg_seq}"

    def stats(self) -> dict:
        with self.lock:
            now = time.time()
            members = {}
            for (agent, user), log_ in self.member_log.items():
                members[f"{agent}:{user}"] = {"minute": sum(1 for t in log_ if t > now - 60), "hour": len(log_)}
            return {
                "calls": dict(self.calls), "errors": dict(self.errors), "faults_fired": dict(self.faults_fired),
                "token_calls": sum(n for p, n in self.calls.items() if p in TOKEN_PATHS),
                "tokens_issued": len(self.tokens), "sent": len(self.sent), "dropped": self.dropped,
                "breach_count": len(self.breaches), "breaches": list(self.breaches[-200:]),
                "members": members,
            }

    # --- WeCom per-member limits ---------------------------------------------------

    def member_admit(self, agentid: str, user: str) -> bool:
        """Count one message to `user`; False when the platform would drop it."""
        with self.lock:
            now = time.time()
            log_ = self.member_log[(agentid, user)]
            while log_ and log_[0] <= now - 3600:
                log_.popleft()
            per_min = sum(1 for t in log_ if t > now - 60)
            window = None
            if per_min >= int(self.config["per_member_per_minute"]):
                window = "minute"
            elif len(log_) >= int(self.config["per_member_per_hour"]):
                window = "hour"
            if window:
                self.breaches.append({"agentid": agentid, "userid": user, "window": window, "time": now})
                return False
            log_.append(now)
            return True

    def is_duplicate(self, key: str, interval: float) -> bool:
        with self.lock:
            now = time.time()
            seen = self.dup_registry.get(key)
            self.dup_registry[key] = now
            return seen is not None and now - seen < interval


# --- request helpers ------------------------------------------------------------

def _body() -> dict:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiAnswer(44002, "empty post data")
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiAnswer(47001, "data format error: Warning: wrong json format.") from None
    if not isinstance(data, dict):
        raise ApiAnswer(47001, "data format error")
    return data


def _ok(**extra: Any) -> dict:
    return {"errcode": 0, "errmsg": "ok", **extra}


def _need_str(data: dict, key: str, errcode: int, errmsg: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ApiAnswer(errcode, errmsg)
    return value


def _content(data: dict, msgtype: str, limit: int = 2048) -> str:
    part = data.get(msgtype)
    if not isinstance(part, dict):
        raise ApiAnswer(44004, f"empty content: missing {msgtype}")
    content = part.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ApiAnswer(44004, "empty content")
    if len(content.encode()) > limit:
        raise ApiAnswer(45002, "content size out of limit")
    return content


def _known_openid(st: FakeState, data: dict) -> str:
    """The request's `touser`, an openid the fake knows (40003 otherwise)."""
    touser = data.get("touser")
    if not isinstance(touser, str) or not st.user_known(touser):
        raise ApiAnswer(40003, "invalid openid")
    return touser


def _credentials(app: Any, secret: Any, app_name: str, secret_name: str) -> tuple[str, str]:
    """A token request's app id and secret, both given (41002 / 41004 otherwise)."""
    if not app:
        raise ApiAnswer(41002, f"{app_name} missing")
    if not secret:
        raise ApiAnswer(41004, f"{secret_name} missing")
    return str(app), str(secret)


def _agentid(data: dict) -> str:
    if "agentid" not in data or data["agentid"] in (None, ""):
        raise ApiAnswer(41011, "missing agentid")
    try:
        return str(int(data["agentid"]))
    except (TypeError, ValueError):
        raise ApiAnswer(40056, "invalid agentid") from None


def _api(app: Flask, st: FakeState) -> Callable[..., Any]:
    """The decorator that registers one faked API on `app`."""

    def api(path: str, methods: list[str], platform: str | None, needs_token: bool = True):
        """Register an API handler: faults first, then token, then the handler.

        The handler returns (answer, recorded) where recorded is False when the
        call was accepted but not delivered (nothing recorded) or a dict of extra
        fields for the /_sent entry.
        """

        def deco(fn: Callable[..., Any]):
            def view():
                generation = st.generation
                started = time.time()
                with st.lock:
                    st.calls[path] += 1
                fault = st.take_fault(path)
                if fault is not None:
                    if fault.delay_s:
                        time.sleep(float(fault.delay_s))  # then answer normally, as a slow platform does
                    if fault.status:
                        return Response("fake platform fault", status=int(fault.status), mimetype="text/plain")
                    if fault.errcode is not None:
                        with st.lock:
                            st.errors[f"{path}:{fault.errcode}"] += 1
                        return jsonify({"errcode": int(fault.errcode), "errmsg": "fault injected by fake platform"})
                try:
                    tok = st.check_token(platform, request.args.get("access_token")) if needs_token else None
                    answer, extra = fn(tok)
                except ApiAnswer as err:
                    with st.lock:
                        st.errors[f"{path}:{err.errcode}"] += 1
                    return jsonify({"errcode": err.errcode, "errmsg": err.errmsg})
                if extra is not None and path not in TOKEN_PATHS:
                    body = None
                    if request.method == "POST":
                        try:
                            body = json.loads(request.get_data(cache=True) or b"null")
                        except ValueError:
                            body = None
                    entry = {"path": path, "time": started, "method": request.method,
                             "query": {k: v for k, v in request.args.items() if k != "access_token"},
                             "json": body, "platform": platform, **extra}
                    st.record(generation, entry)
                return Response(json.dumps(answer, ensure_ascii=False), mimetype="application/json")

            view.__name__ = "api_" + path.strip("/").replace("/", "_")
            app.add_url_rule(path, view.__name__, view, methods=methods)
            return fn

        return deco

    return api


def _oa_routes(app: Flask, st: FakeState, api: Callable[..., Any]) -> None:
    """Official Account: tokens, customer-service and template messages."""
    @api("/cgi-bin/token", ["GET"], None, needs_token=False)
    def oa_token(_tok):
        a = request.args
        if a.get("grant_type") != "client_credential":
            raise ApiAnswer(40002, "invalid grant_type")
        appid, secret = _credentials(a.get("appid"), a.get("secret"), "appid", "appsecret")
        tok = st.oa_token(appid, secret)
        return {"access_token": tok.value, "expires_in": int(st.config["expires_in"])}, {}

    @api("/cgi-bin/stable_token", ["POST"], None, needs_token=False)
    def oa_stable_token(_tok):
        data = _body()
        if data.get("grant_type") != "client_credential":
            raise ApiAnswer(40002, "invalid grant_type")
        appid, secret = _credentials(data.get("appid"), data.get("secret"), "appid", "appsecret")
        tok = st.oa_stable_token(appid, secret, bool(data.get("force_refresh")))
        return {"access_token": tok.value, "expires_in": max(1, int(tok.expires_at - time.time()))}, {}

    @api("/cgi-bin/message/custom/send", ["POST"], "mp")
    def oa_custom_send(_tok):
        data = _body()
        touser = _known_openid(st, data)
        msgtype = data.get("msgtype")
        if msgtype not in OA_MSGTYPES:
            raise ApiAnswer(40008, "invalid message type")
        if msgtype == "text":
            _content(data, "text")
        elif not isinstance(data.get(msgtype), dict):
            raise ApiAnswer(47001, f"data format error: missing {msgtype}")
        if touser in st.config["closed_window"]:
            raise ApiAnswer(45015, "response out of time limit or subscription is canceled")
        limit = int(st.config.get("mp_cs_per_window") or 0)
        if limit:
            with st.lock:
                if st.cs_counts[touser] >= limit:
                    raise ApiAnswer(45047, "out of response count limit")
                st.cs_counts[touser] += 1
        return _ok(), {}

    @api("/cgi-bin/message/template/send", ["POST"], "mp")
    def oa_template_send(_tok):
        data = _body()
        touser = _known_openid(st, data)
        template_id = data.get("template_id")
        if not isinstance(template_id, str) or not template_id:
            raise ApiAnswer(40037, "invalid template_id")
        if st.config["templates"] and template_id not in st.config["templates"]:
            raise ApiAnswer(40037, "invalid template_id")
        if not isinstance(data.get("data"), dict):
            raise ApiAnswer(47001, "data format error: data must be an object")
        if touser in st.config["unsubscribed"]:
            raise ApiAnswer(43004, "require subscribe")
        msgid = int(time.time() * 1000)
        return _ok(msgid=msgid), {"msgid": msgid}


def _wecom_message_routes(app: Flask, st: FakeState, api: Callable[..., Any]) -> None:
    """WeCom: the token and message/send (every kind the bot sends)."""
    @api("/cgi-bin/gettoken", ["GET"], None, needs_token=False)
    def wecom_gettoken(_tok):
        corpid, secret = _credentials(request.args.get("corpid"), request.args.get("corpsecret"), "corpid", "corpsecret")
        tok = st.wecom_token(corpid, secret)
        return _ok(access_token=tok.value, expires_in=max(1, int(tok.expires_at - time.time()))), {}

    @api("/cgi-bin/message/send", ["POST"], "wecom")
    def wecom_message_send(tok):
        data = _body()
        agentid = _agentid(data)
        msgtype = data.get("msgtype")
        if msgtype not in WECOM_MSGTYPES:
            raise ApiAnswer(40008, "invalid message type")
        if msgtype in ("text", "markdown"):
            _content(data, msgtype)
        elif msgtype == "textcard":
            card = data.get("textcard")
            if not isinstance(card, dict) or not card.get("title"):
                raise ApiAnswer(41016, "missing title")
            if not card.get("description"):
                raise ApiAnswer(44004, "empty content: missing description")
            if not card.get("url"):
                raise ApiAnswer(40058, "missing url")
            if len(str(card["title"]).encode()) > 128 or len(str(card["description"]).encode()) > 512:
                raise ApiAnswer(45002, "content size out of limit: textcard title <= 128, description <= 512 bytes")
        elif msgtype == "template_card":
            card = data.get("template_card")
            if not isinstance(card, dict) or not card.get("card_type"):
                raise ApiAnswer(40058, "template_card.card_type missing")
            if card["card_type"] in CALLBACK_CARDS and not card.get("task_id"):
                raise ApiAnswer(40058, "template_card.task_id missing")
            if card["card_type"] == "button_interaction" and not card.get("button_list"):
                raise ApiAnswer(40058, "template_card.button_list missing")
        touser = data.get("touser") or ""
        if not (touser or data.get("toparty") or data.get("totag")):
            raise ApiAnswer(40058, "touser, toparty and totag all empty")
        users = [u for u in str(touser).split("|") if u] if touser != "@all" else []
        invalid = [u for u in users if not st.user_known(u)]
        valid = [u for u in users if st.user_known(u)]
        if users and not valid and not data.get("toparty") and not data.get("totag"):
            raise ApiAnswer(81013, "user & party & tag all invalid")
        extra: dict[str, Any] = {}
        if data.get("enable_duplicate_check"):
            interval = float(data.get("duplicate_check_interval") or 1800)
            key = json.dumps({k: v for k, v in data.items() if k not in ("enable_duplicate_check",
                              "duplicate_check_interval")}, sort_keys=True, ensure_ascii=False)
            if st.is_duplicate(key, interval):
                extra["dropped"] = "duplicate"
        if not extra:
            kept = [u for u in valid if st.member_admit(agentid, u)]
            dropped = [u for u in valid if u not in kept]
            if dropped:
                extra["rate_dropped"] = dropped
                with st.lock:
                    st.dropped += len(dropped)
                if not kept and users:
                    extra["dropped"] = "rate_limit"
            extra["delivered_to"] = kept
        answer = _ok(invaliduser="|".join(invalid), invalidparty="", invalidtag="", unlicenseduser="",
                     msgid=st.next_msgid())
        if msgtype == "template_card" and (data["template_card"].get("card_type") in CALLBACK_CARDS
                                           or data["template_card"].get("action_menu")):
            code = "fake-rc-" + secrets.token_hex(8)
            with st.lock:
                st.issued_response_codes.add(code)
            answer["response_code"] = code
        extra["msgid"] = answer["msgid"]
        return answer, extra


def _card_update_routes(app: Flask, st: FakeState, api: Callable[..., Any]) -> None:
    """WeCom: a clicked template card updated in place."""
    @api("/cgi-bin/message/update_template_card", ["POST"], "wecom")
    def wecom_update_card(_tok):
        data = _body()
        _agentid(data)
        code = data.get("response_code")
        if not isinstance(code, str) or not code:
            raise ApiAnswer(40058, "response_code missing")
        if not data.get("userids") and not data.get("partyids") and not data.get("tagids") and not data.get("atall"):
            raise ApiAnswer(40058, "userids, partyids, tagids and atall all empty")
        if not isinstance(data.get("button"), dict) and not isinstance(data.get("template_card"), dict):
            raise ApiAnswer(40058, "button or template_card required")
        if isinstance(data.get("button"), dict) and not data["button"].get("replace_name"):
            raise ApiAnswer(40058, "button.replace_name missing")
        with st.lock:
            # Any code a callback could carry is accepted, but only once (PLATFORM.md).
            if code in st.used_response_codes:
                raise ApiAnswer(40035, "invalid response_code: already used")
            st.used_response_codes.add(code)
        userids = data.get("userids") or []
        invalid = [u for u in userids if not st.user_known(u)]
        return _ok(invaliduser=invalid), {}


def _appchat_routes(app: Flask, st: FakeState, api: Callable[..., Any]) -> None:
    """WeCom app chats (the bot's own group chats with staff)."""
    @api("/cgi-bin/appchat/create", ["POST"], "wecom")
    def appchat_create(_tok):
        data = _body()
        userlist = data.get("userlist")
        if not isinstance(userlist, list) or len(userlist) < 2:
            raise ApiAnswer(40058, "userlist needs at least 2 members")
        bad = [u for u in userlist if not st.user_known(u)]
        if bad:
            raise ApiAnswer(60111, f"invalid userid {bad[0]}")
        chatid = data.get("chatid") or "wr" + secrets.token_hex(8)
        with st.lock:
            if chatid in st.chats:
                raise ApiAnswer(86215, "chatid already exists")
            owner = data.get("owner") or userlist[0]
            st.chats[chatid] = {"chatid": chatid, "name": data.get("name") or "", "owner": owner,
                                "userlist": list(dict.fromkeys(userlist))}
        return _ok(chatid=chatid), {"chatid": chatid}

    def _chat_or_error(chatid: Any) -> dict | None:
        if not isinstance(chatid, str) or not chatid:
            raise ApiAnswer(40058, "chatid missing")
        if chatid.startswith(("unknown", "invalid")):
            raise ApiAnswer(86003, "chat not exist")
        return st.chats.get(chatid)

    @api("/cgi-bin/appchat/update", ["POST"], "wecom")
    def appchat_update(_tok):
        data = _body()
        with st.lock:
            chat = _chat_or_error(data.get("chatid"))
            if chat is None:
                raise ApiAnswer(86003, "chat not exist")
            if data.get("name"):
                chat["name"] = data["name"]
            if data.get("owner"):
                chat["owner"] = data["owner"]
            for u in data.get("add_user_list") or []:
                if u not in chat["userlist"]:
                    chat["userlist"].append(u)
            chat["userlist"] = [u for u in chat["userlist"] if u not in (data.get("del_user_list") or [])]
        return _ok(), {}

    @api("/cgi-bin/appchat/get", ["GET"], "wecom")
    def appchat_get(_tok):
        with st.lock:
            chat = _chat_or_error(request.args.get("chatid"))
            if chat is None:
                raise ApiAnswer(86003, "chat not exist")
            return _ok(chat_info=copy.deepcopy(chat)), None

    @api("/cgi-bin/appchat/send", ["POST"], "wecom")
    def appchat_send(_tok):
        data = _body()
        _chat_or_error(data.get("chatid"))  # chats made outside the fake are accepted
        msgtype = data.get("msgtype")
        if msgtype not in WECOM_MSGTYPES - {"template_card", "miniprogram_notice"}:
            raise ApiAnswer(40008, "invalid message type")
        if msgtype in ("text", "markdown"):
            _content(data, msgtype)
        return _ok(), {}


def _customer_group_routes(app: Flask, st: FakeState, api: Callable[..., Any]) -> None:
    """WeCom customer groups: group-send tasks and group look-ups."""
    @api("/cgi-bin/externalcontact/add_msg_template", ["POST"], "wecom")
    def add_msg_template(_tok):
        data = _body()
        chat_type = data.get("chat_type") or "single"
        if chat_type not in ("single", "group"):
            raise ApiAnswer(40058, "invalid chat_type")
        text = data.get("text") if isinstance(data.get("text"), dict) else {}
        if not text.get("content") and not data.get("attachments"):
            raise ApiAnswer(44004, "empty content: text and attachments both empty")
        if chat_type == "group" and not data.get("sender"):
            raise ApiAnswer(40058, "sender required for chat_type group")
        msgid = "msg" + secrets.token_hex(12)
        if chat_type == "group":  # the sender must confirm in WeCom (POST /_groupmsg/confirm here)
            chats = [c for c in (data.get("chat_id_list") or []) if isinstance(c, str)]
            with st.lock:
                st.group_msgs[msgid] = {"sender": data["sender"], "chat_ids": chats,
                                        "status": {c: 0 for c in chats}, "send_time": {}}
        return _ok(fail_list=[], msgid=msgid), {"msgid": msgid}

    @api("/cgi-bin/externalcontact/get_groupmsg_send_result", ["POST"], "wecom")
    def get_groupmsg_send_result(_tok):
        """What a bulk send did per group: status 0 not sent (not confirmed yet), 1 sent,
        2 not a customer any more, 3 the group already got another bulk send."""
        data = _body()
        with st.lock:
            msg = st.group_msgs.get(str(data.get("msgid") or ""))
            if msg is None:
                raise ApiAnswer(41063, "msgid not exist")
            if data.get("userid") and data["userid"] != msg["sender"]:
                return _ok(send_list=[], next_cursor=""), None
            rows = [{"chat_id": c, "userid": msg["sender"], "status": st_,
                     **({"send_time": msg["send_time"][c]} if c in msg["send_time"] else {})}
                    for c, st_ in msg["status"].items()]
        return _ok(send_list=rows, next_cursor=""), None

    @api("/cgi-bin/externalcontact/groupchat/get", ["POST"], "wecom")
    def groupchat_get(_tok):
        data = _body()
        chat_id = data.get("chat_id")
        if not isinstance(chat_id, str) or not chat_id:
            raise ApiAnswer(40058, "chat_id missing")
        with st.lock:
            group = copy.deepcopy((st.config.get("customer_groups") or {}).get(chat_id))
        if group is None:
            raise ApiAnswer(40050, "chatid not exist")
        group.setdefault("chat_id", chat_id)
        group.setdefault("member_list", [])
        group.setdefault("admin_list", [])
        return _ok(group_chat=group), None


def _sign_in_routes(app: Flask, st: FakeState, api: Callable[..., Any]) -> None:
    """WeCom sign-in: OAuth codes, user look-up by code, JS-SDK tickets."""
    def getuserinfo(_tok):
        code = request.args.get("code", "")
        if not code:
            raise ApiAnswer(41008, "missing code")
        with st.lock:
            userid = st.oauth_issued.get(code) or (st.config.get("oauth_codes") or {}).get(code)
            if not userid or code in st.oauth_used:
                raise ApiAnswer(40029, "invalid code")
            st.oauth_used.add(code)
        return _ok(userid=userid, user_ticket="", expires_in=1800), {"userid": userid}

    api("/cgi-bin/auth/getuserinfo", ["GET"], "wecom")(getuserinfo)
    api("/cgi-bin/user/getuserinfo", ["GET"], "wecom")(getuserinfo)  # the older name

    def issue_ticket(kind: str, app: str) -> dict:
        """A JS-SDK ticket: the configured one, else a random one kept while valid (as WeCom's)."""
        with st.lock:
            now = time.time()
            ticket, expires_at = st.jsapi_tickets.get((kind, app), ("", 0.0))
            fixed = st.config.get(kind)
            if fixed:
                ticket, expires_at = fixed, now + int(st.config["expires_in"])
            elif not ticket or expires_at <= now:
                ticket, expires_at = "fake-ticket-" + secrets.token_urlsafe(24), now + int(st.config["expires_in"])
            st.jsapi_tickets[(kind, app)] = (ticket, expires_at)
        return _ok(ticket=ticket, expires_in=max(1, int(expires_at - now)))

    @api("/cgi-bin/ticket/get", ["GET"], "wecom")
    def ticket_get(tok):
        if request.args.get("type") != "agent_config":
            raise ApiAnswer(40058, "invalid type: only agent_config is faked")
        return issue_ticket("agent_config_ticket", tok.app), {}

    @api("/cgi-bin/get_jsapi_ticket", ["GET"], "wecom")
    def get_jsapi_ticket(tok):
        return issue_ticket("jsapi_ticket", tok.app), {}

    @app.get("/connect/oauth2/authorize")
    def oauth_authorize():
        a = request.args
        problems = [name for name, ok in (("appid", a.get("appid")), ("redirect_uri", a.get("redirect_uri")),
                                          ("response_type=code", a.get("response_type") == "code"),
                                          ("scope", a.get("scope") in ("snsapi_base", "snsapi_privateinfo")))
                    if not ok]
        user = st.config.get("oauth_authorize_user")
        if problems or not user:
            return Response("fake authorize: bad " + ", ".join(problems) if problems
                            else "fake authorize: set config oauth_authorize_user", status=400, mimetype="text/plain")
        code = "fake-code-" + secrets.token_hex(8)
        with st.lock:
            st.oauth_issued[code] = str(user)
            st.calls["/connect/oauth2/authorize"] += 1
        uri = str(a["redirect_uri"])
        query = urlencode({"code": code, "state": a.get("state", "")})
        return Response(status=302, headers={"Location": uri + ("&" if "?" in uri else "?") + query})


def _media_routes(app: Flask, st: FakeState, api: Callable[..., Any]) -> None:
    """Media files (OA and WeCom share the path) and WeCom users."""
    def media_get():
        """GET cgi-bin/media/get (OA and WeCom share the path): the file itself with its
        Content-Type, or an errcode answer as JSON."""
        path = "/cgi-bin/media/get"
        generation, started = st.generation, time.time()
        with st.lock:
            st.calls[path] += 1
        fault = st.take_fault(path)
        if fault is not None:
            if fault.delay_s:
                time.sleep(float(fault.delay_s))
            if fault.status:
                return Response("fake platform fault", status=int(fault.status), mimetype="text/plain")
            if fault.errcode is not None:
                return jsonify({"errcode": int(fault.errcode), "errmsg": "fault injected by fake platform"})
        value = request.args.get("access_token")
        tok = st.tokens.get(value or "")
        try:
            tok = st.check_token(tok.platform if tok else "mp", value)
            media_id = request.args.get("media_id") or ""
            if not media_id:
                raise ApiAnswer(40007, "invalid media_id")
            known = (st.config.get("media") or {}).get(media_id)
            if known is None and media_id.startswith(("invalid", "expired")):
                raise ApiAnswer(40007, "invalid media_id")
        except ApiAnswer as err:
            with st.lock:
                st.errors[f"{path}:{err.errcode}"] += 1
            return jsonify({"errcode": err.errcode, "errmsg": err.errmsg})
        import base64

        if known is not None:
            body, ctype = base64.b64decode(known.get("base64") or ""), known.get("content_type") or "image/jpeg"
        else:  # a minimal JPEG (SOI, a comment naming the id, EOI)
            note = media_id.encode()[:200]
            body, ctype = b"\xff\xd8\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + b"\xff\xd9", "image/jpeg"
        st.record(generation, {"path": path, "time": started, "method": "GET", "platform": tok.platform,
                               "query": {"media_id": media_id}, "json": None, "size": len(body)})
        return Response(body, mimetype=ctype, headers={
            "Content-Disposition": f'attachment; filename="{media_id}.jpg"'})

    app.add_url_rule("/cgi-bin/media/get", "api_cgi-bin_media_get", media_get, methods=["GET"])

    @api("/cgi-bin/user/get", ["GET"], "wecom")
    def user_get(_tok):
        userid = request.args.get("userid", "")
        if not st.user_known(userid):
            raise ApiAnswer(60111, "userid not found")
        return _ok(userid=userid, name=userid, status=1), None


def _sent_routes(app: Flask, st: FakeState, api: Callable[..., Any]) -> None:
    """Test controls: what was sent, and confirming a group-send task."""
    @app.get("/_sent")
    def get_sent():
        path = request.args.get("path")
        with st.lock:
            items = [e for e in st.sent if path is None or e["path"] == path]
        return jsonify(items)

    @app.delete("/_sent")
    def delete_sent():
        st.clear_sent()
        return jsonify({"ok": True})

    @app.post("/_groupmsg/confirm")
    def confirm_groupmsg():
        """The staff sender taps 发送 in WeCom: {"msgid"} (or {"sender"}: all theirs), optional
        {"status": 1|2|3} per the platform's codes."""
        data = request.get_json(silent=True) or {}
        status = int(data.get("status", 1))
        done = []
        with st.lock:
            for msgid, msg in st.group_msgs.items():
                if data.get("msgid") not in (None, msgid) or data.get("sender") not in (None, msg["sender"]):
                    continue
                for c in msg["status"]:
                    if msg["status"][c] == 0:
                        msg["status"][c] = status
                        msg["send_time"][c] = int(time.time())
                        done.append({"msgid": msgid, "chat_id": c})
        return jsonify({"confirmed": done})


def _control_routes(app: Flask, st: FakeState, api: Callable[..., Any]) -> None:
    """Test controls: faults, stats, settings, token expiry, reset, health."""
    @app.post("/_faults")
    def add_fault():
        data = request.get_json(force=True, silent=True) or {}
        path = data.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            return jsonify({"error": "path required"}), 400
        if data.get("errcode") is None and data.get("status") is None and data.get("delay_s") is None:
            return jsonify({"error": "one of errcode, status, delay_s required"}), 400
        fault = Fault(errcode=data.get("errcode"), status=data.get("status"), delay_s=data.get("delay_s"),
                      times=max(1, int(data.get("times", 1))))
        with st.lock:
            st.faults[path].append(fault)
        return jsonify({"ok": True})

    @app.get("/_faults")
    def list_faults():
        with st.lock:
            return jsonify({p: [f.__dict__ for f in q] for p, q in st.faults.items() if q})

    @app.delete("/_faults")
    def clear_faults():
        with st.lock:
            st.faults.clear()
        return jsonify({"ok": True})

    @app.get("/_stats")
    def get_stats():
        return jsonify(st.stats())

    @app.get("/_config")
    def get_config():
        with st.lock:
            return jsonify(st.config)

    @app.post("/_config")
    def set_config():
        data = request.get_json(force=True, silent=True) or {}
        unknown = sorted(set(data) - set(DEFAULT_CONFIG))
        if unknown:
            return jsonify({"error": f"unknown config keys {unknown}"}), 400
        with st.lock:
            st.config.update(data)
            return jsonify(st.config)

    @app.post("/_tokens/expire")
    def expire_tokens():
        return jsonify({"expired": st.expire_tokens()})

    @app.post("/_reset")
    def reset():
        with st.lock:
            generation = st.generation
            st.reset()
            st.generation = generation + 1
        return jsonify({"ok": True})

    @app.get("/_health")
    def health():
        return jsonify({"ok": True})


# One function a platform area; each registers its routes on the app.
AREAS = (_oa_routes, _wecom_message_routes, _card_update_routes, _appchat_routes, _customer_group_routes, _sign_in_routes, _media_routes, _sent_routes, _control_routes)


def create_fake_app(state: FakeState | None = None) -> Flask:
    """The fake as a WSGI app (tests may also mount it in-process)."""
    st = state or FakeState()
    app = Flask("guanjia-fake-platform")
    app.config["fake_state"] = st

    api = _api(app, st)
    for area in AREAS:
        area(app, st, api)
    return app


def serve_fake_platform(host: str = "127.0.0.1", port: int = 9100) -> None:
    """Serve the fake (threaded: delayed answers must not block other calls)."""
    from werkzeug.serving import run_simple

    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("the fake platform is meant for loopback; serving on %s anyway", host)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    print(f"fake platform on http://{host}:{port} (GET /_sent, POST /_faults, GET /_stats)", flush=True)
    run_simple(host, port, create_fake_app(), threaded=True, use_reloader=False, use_debugger=False)
