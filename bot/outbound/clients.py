"""Thin HTTP clients for the OA and WeCom APIs.

Own code rather than wechatpy because wechatpy 1.8.18 has no stable_token,
template_card or update_template_card, and because the sender needs to tell
errcodes, 5xx answers and time-outs apart. Base URLs come from settings
(WECHAT_API_BASE / WECOM_API_BASE) so tests and local runs use the fake.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable

import requests
from redis.exceptions import RedisError

from bot.queues import get_redis
from ground import ports
from ground.config import ChannelSettings, get_settings
from bot.outbound.options import get_options
from bot.outbound.tokens import TokenCache

log = logging.getLogger(__name__)

# A refused token: invalidate it and retry the call once with a fresh one.
TOKEN_ERRCODES = frozenset({40001, 42001, 40014})
# A JS-SDK ticket is thrown away on a page's say-so at most this often (discard_jsapi_ticket).
TICKET_DISCARD_INTERVAL_S = 60


class PlatformError(ports.PlatformError):
    """Anything that kept a call from succeeding (the ground floor's PlatformError, so a
    handler catches it through the ports without knowing this client)."""


class ApiError(PlatformError):
    """The platform answered with errcode != 0."""

    def __init__(self, path: str, errcode: int, errmsg: str, answer: dict | None = None) -> None:
        super().__init__(f"{path}: errcode {errcode} {errmsg}")
        self.path, self.errcode, self.errmsg, self.answer = path, errcode, errmsg, answer or {}


class TransportError(PlatformError):
    """No usable answer: time-out, connection refused, HTTP 5xx, not JSON."""

    def __init__(self, path: str, kind: str, detail: str, status: int | None = None) -> None:
        super().__init__(f"{path}: {kind} {detail}".strip())
        self.path, self.kind, self.detail, self.status = path, kind, detail, status


class NotConfigured(PlatformError):
    """The channel has no credentials (CONTRACT.md: then the channel is off)."""


class _Client:
    platform = ""
    can_force_token = False

    def __init__(self, channel: ChannelSettings, timeout_s: float) -> None:
        self.channel = channel
        self.base = channel.api_base.rstrip("/")
        self.timeout_s = timeout_s
        self._local = threading.local()  # requests.Session is not documented as thread-safe
        self.tokens = TokenCache(self._token_name(), self.fetch_token, _redis, margin_s=get_options().token_margin_s,
                                 can_force=self.can_force_token)

    def _token_name(self) -> str:
        raise NotImplementedError

    def fetch_token(self, force: bool = False) -> tuple[str, int]:
        raise NotImplementedError

    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def request(self, method: str, path: str, params: dict | None = None, body: Any = None) -> dict:
        """One HTTP call, no token handling; the answer's JSON (errcode may be non-zero)."""
        url = self.base + path
        data = None
        headers = {}
        if body is not None:
            # ensure_ascii=False: the OA shows \\u escapes literally in some message types.
            data = json.dumps(body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            resp = self.session.request(method, url, params=params, data=data, headers=headers,
                                        timeout=self.timeout_s)
        except requests.Timeout as exc:
            raise TransportError(path, "timeout", f"no answer within {self.timeout_s}s") from exc
        except requests.ConnectionError as exc:
            raise TransportError(path, "connection", str(exc)[:200]) from exc
        except requests.RequestException as exc:
            raise TransportError(path, "http", str(exc)[:200]) from exc
        if resp.status_code >= 400:
            raise TransportError(path, f"http_{resp.status_code}", resp.text[:200], status=resp.status_code)
        try:
            answer = resp.json()
        except ValueError:
            raise TransportError(path, "bad_json", resp.text[:200], status=resp.status_code) from None
        if not isinstance(answer, dict):
            raise TransportError(path, "bad_json", resp.text[:200], status=resp.status_code)
        return answer

    def call(self, method: str, path: str, body: Any = None, params: dict | None = None) -> dict:
        """An API call with the cached token; a refused token is replaced and the call retried once."""
        token = self.tokens.get()
        answer = self.request(method, path, {**(params or {}), "access_token": token}, body)
        if answer.get("errcode") in TOKEN_ERRCODES:
            log.info("%s refused the %s token (errcode %s); refreshing once", path, self.platform,
                     answer.get("errcode"))
            self.tokens.invalidate(token)
            token = self.tokens.get()
            answer = self.request(method, path, {**(params or {}), "access_token": token}, body)
        code = int(answer.get("errcode") or 0)
        if code != 0:
            raise ApiError(path, code, str(answer.get("errmsg", "")), answer)
        return answer

    def get_media(self, media_id: str, max_bytes: int = 10 * 1024 * 1024) -> tuple[bytes, str]:
        """cgi-bin/media/get: a temporary media file (an owner's photo or voice note; ids
        last 3 days). Returns (content, content type); the platform answers errors as
        JSON (e.g. 40007 invalid media_id), a refused token is replaced once."""
        path = "/cgi-bin/media/get"
        for attempt in (0, 1):
            token = self.tokens.get()
            try:
                resp = self.session.get(self.base + path, params={"access_token": token, "media_id": media_id},
                                        timeout=self.timeout_s)
            except requests.Timeout as exc:
                raise TransportError(path, "timeout", f"no answer within {self.timeout_s}s") from exc
            except requests.RequestException as exc:
                raise TransportError(path, "connection", str(exc)[:200]) from exc
            if resp.status_code >= 400:
                raise TransportError(path, f"http_{resp.status_code}", resp.text[:200], status=resp.status_code)
            ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype in ("application/json", "text/plain", "text/json"):
                try:
                    answer = resp.json()
                except ValueError:
                    raise TransportError(path, "bad_json", resp.text[:200], status=resp.status_code) from None
                code = int(answer.get("errcode") or 0)
                if code in TOKEN_ERRCODES and attempt == 0:
                    self.tokens.invalidate(token)
                    continue
                raise ApiError(path, code, str(answer.get("errmsg", "")), answer)
            if len(resp.content) > max_bytes:
                raise TransportError(path, "too_large", f"{len(resp.content)} bytes")
            return resp.content, ctype or "application/octet-stream"
        raise TransportError(path, "token", "token refused twice")

    def _checked(self, path: str, answer: dict) -> dict:
        code = int(answer.get("errcode") or 0)
        if code != 0:
            raise ApiError(path, code, str(answer.get("errmsg", "")), answer)
        if not answer.get("access_token"):
            raise TransportError(path, "bad_json", "no access_token in answer")
        return answer


class WeChatClient(_Client):
    """Official Account (公众号)."""

    platform = "mp"

    @property
    def can_force_token(self) -> bool:  # stable_token's force_refresh; /cgi-bin/token always rotates
        return self.token_mode == "stable"

    def __init__(self, channel: ChannelSettings, timeout_s: float, token_mode: str = "stable") -> None:
        if not (channel.app_id and channel.secret):
            raise NotConfigured("WECHAT_APPID and WECHAT_SECRET are needed to send OA messages")
        self.token_mode = token_mode
        super().__init__(channel, timeout_s)

    def _token_name(self) -> str:
        return f"mp:{self.channel.app_id}:{self.token_mode}"

    def fetch_token(self, force: bool = False) -> tuple[str, int]:
        if self.token_mode == "stable":
            # stable_token does not rotate, so several deployments cannot knock each other's token out.
            path = "/cgi-bin/stable_token"
            answer = self._checked(path, self.request("POST", path, body={
                "grant_type": "client_credential", "appid": self.channel.app_id,
                "secret": self.channel.secret, "force_refresh": bool(force)}))
        else:
            path = "/cgi-bin/token"
            answer = self._checked(path, self.request("GET", path, params={
                "grant_type": "client_credential", "appid": self.channel.app_id, "secret": self.channel.secret}))
        return str(answer["access_token"]), int(answer.get("expires_in") or 7200)

    def send_custom(self, body: dict) -> dict:
        return self.call("POST", "/cgi-bin/message/custom/send", body)

    def send_text(self, openid: str, content: str) -> dict:
        """Customer-service text: only within 48 h of the owner's last message (else 45015)."""
        return self.send_custom({"touser": openid, "msgtype": "text", "text": {"content": content}})

    def send_template(self, openid: str, template_id: str, data: dict, url: str | None = None,
                      miniprogram: dict | None = None) -> dict:
        body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data}
        if url:
            body["url"] = url
        if miniprogram:
            body["miniprogram"] = miniprogram
        return self.call("POST", "/cgi-bin/message/template/send", body)


class WeComClient(_Client):
    """WeCom self-built app (企业微信自建应用)."""

    platform = "wecom"

    def __init__(self, channel: ChannelSettings, timeout_s: float) -> None:
        if not (channel.app_id and channel.secret and channel.agent_id):
            raise NotConfigured("WECOM_CORP_ID, WECOM_SECRET and WECOM_AGENT_ID are needed to send WeCom messages")
        super().__init__(channel, timeout_s)
        self.agent_id = int(channel.agent_id)
        # JS-SDK tickets, cached in Redis like the token (the ticket calls are rate-limited too:
        # WeCom allows an app 100 an hour). The app's for wx.agentConfig; the company's for
        # wx.config, which clients before 3.0.24 need first.
        self.agent_tickets = self._ticket_cache("agent_config_ticket", "/cgi-bin/ticket/get", {"type": "agent_config"})
        self.corp_tickets = self._ticket_cache("jsapi_ticket", "/cgi-bin/get_jsapi_ticket", {})
        self.jsapi_tickets = {"agent": self.agent_tickets, "corp": self.corp_tickets}

    def _token_name(self) -> str:
        return f"wecom:{self.channel.app_id}:{self.channel.agent_id}"

    def fetch_token(self, force: bool = False) -> tuple[str, int]:
        path = "/cgi-bin/gettoken"
        answer = self._checked(path, self.request("GET", path, params={
            "corpid": self.channel.app_id, "corpsecret": self.channel.secret}))
        return str(answer["access_token"]), int(answer.get("expires_in") or 7200)

    # --- app messages -----------------------------------------------------------------

    def send(self, touser: str | list[str], msgtype: str, content: dict,
             duplicate_check_s: int | None = None, **extra: Any) -> dict:
        """message/send; `touser` is "a|b" or a list. duplicate_check_s lets WeCom drop a
        repeat of the same message (used on retries after a time-out)."""
        body: dict[str, Any] = {"touser": touser if isinstance(touser, str) else "|".join(touser),
                                "msgtype": msgtype, "agentid": self.agent_id, msgtype: content, **extra}
        if duplicate_check_s:
            body["enable_duplicate_check"] = 1
            body["duplicate_check_interval"] = int(duplicate_check_s)
        return self.call("POST", "/cgi-bin/message/send", body)

    def send_text(self, touser: str | list[str], content: str, **kw: Any) -> dict:
        return self.send(touser, "text", {"content": content}, **kw)

    def send_markdown(self, touser: str | list[str], content: str, **kw: Any) -> dict:
        return self.send(touser, "markdown", {"content": content}, **kw)

    def send_textcard(self, touser: str | list[str], title: str, description: str, url: str,
                      btntxt: str | None = None, **kw: Any) -> dict:
        card = {"title": title, "description": description, "url": url}
        if btntxt:
            card["btntxt"] = btntxt
        return self.send(touser, "textcard", card, **kw)

    def send_template_card(self, touser: str | list[str], card: dict, **kw: Any) -> dict:
        """Answer carries `response_code` for cards with callbacks (one update_template_card)."""
        return self.send(touser, "template_card", card, **kw)

    def update_template_card(self, userids: list[str], response_code: str, button: dict | None = None,
                             template_card: dict | None = None, atall: bool = False) -> dict:
        body: dict[str, Any] = {"userids": userids, "agentid": self.agent_id, "response_code": response_code}
        if atall:
            body["atall"] = 1
        if button is not None:
            body["button"] = button
        if template_card is not None:
            body["template_card"] = template_card
        return self.call("POST", "/cgi-bin/message/update_template_card", body)

    # --- app group chats (staff only) ---------------------------------------------------

    def appchat_create(self, name: str, owner: str, userlist: list[str], chatid: str | None = None) -> str:
        body: dict[str, Any] = {"name": name, "owner": owner, "userlist": userlist}
        if chatid:
            body["chatid"] = chatid
        return str(self.call("POST", "/cgi-bin/appchat/create", body)["chatid"])

    def appchat_update(self, chatid: str, name: str | None = None, owner: str | None = None,
                       add_user_list: list[str] | None = None, del_user_list: list[str] | None = None) -> dict:
        body: dict[str, Any] = {"chatid": chatid}
        for key, value in (("name", name), ("owner", owner), ("add_user_list", add_user_list),
                           ("del_user_list", del_user_list)):
            if value:
                body[key] = value
        return self.call("POST", "/cgi-bin/appchat/update", body)

    def appchat_get(self, chatid: str) -> dict:
        return self.call("GET", "/cgi-bin/appchat/get", params={"chatid": chatid})["chat_info"]

    def appchat_send(self, chatid: str, msgtype: str, content: dict, safe: int = 0) -> dict:
        return self.call("POST", "/cgi-bin/appchat/send", {"chatid": chatid, "msgtype": msgtype,
                                                           msgtype: content, "safe": safe})

    # --- customer contact -----------------------------------------------------------------

    def add_msg_template(self, body: dict) -> dict:
        """Company bulk send (the staff sender must confirm it in WeCom)."""
        return self.call("POST", "/cgi-bin/externalcontact/add_msg_template", body)

    def add_group_msg(self, sender: str, chat_ids: list[str], text: str) -> str:
        """A bulk send into customer groups (`chat_type` group) that `sender`, the groups'
        staff owner, confirms with one tap in WeCom; returns the msgid to track."""
        answer = self.add_msg_template({"chat_type": "group", "sender": sender, "chat_id_list": list(chat_ids),
                                        "text": {"content": text}})
        return str(answer["msgid"])

    def get_groupmsg_send_result(self, msgid: str, userid: str, cursor: str = "") -> dict:
        """What a bulk send did per group: {"send_list": [{"chat_id", "status", "send_time"?}],
        "next_cursor"}; status 0 not yet confirmed, 1 sent, 2/3 refused by the platform."""
        body = {"msgid": msgid, "userid": userid, "limit": 1000}
        if cursor:
            body["cursor"] = cursor
        return self.call("POST", "/cgi-bin/externalcontact/get_groupmsg_send_result", body)

    # --- web sign-in and JS-SDK (the /sidebar page) ---------------------------------------

    def oauth_userinfo(self, code: str) -> dict:
        """OAuth2 `code` -> {"userid": ...} for a member (non-members get `openid` and no userid).
        A code works once and for 5 minutes; an unknown or used one is ApiError 40029."""
        return self.call("GET", "/cgi-bin/auth/getuserinfo", params={"code": code})

    def agent_config_ticket(self) -> str:
        """The app's jsapi ticket for `wx.agentConfig` (type=agent_config), cached in Redis like
        the token: one process refreshes, the others wait (the ticket call is rate-limited too)."""
        return self.agent_tickets.get()

    def corp_jsapi_ticket(self) -> str:
        """The company's jsapi ticket for `wx.config` (`get_jsapi_ticket`), cached like the app's."""
        return self.corp_tickets.get()

    def discard_jsapi_ticket(self, kind: str) -> bool:
        """Drop the cached "agent" or "corp" ticket after WeCom refused a signature made with it,
        so the next call fetches a fresh one. At most once a minute per ticket (a Redis key),
        so a page stuck in a failure loop cannot spend the ticket calls; False when skipped."""
        cache = self.jsapi_tickets[kind]
        try:
            r = _redis()
            if not r.set(cache.key + ":discarded", "1", nx=True, ex=TICKET_DISCARD_INTERVAL_S):
                return False
            cached = r.get(cache.key)
        except RedisError as exc:  # no shared record of refreshes: refuse rather than risk a storm
            log.warning("jsapi ticket %s: not discarded, Redis unavailable (%s)", kind, exc)
            return False
        if cached:
            cache.invalidate(cached.decode())
        return True

    def _ticket_cache(self, name: str, path: str, params: dict) -> TokenCache:
        """A Redis-shared cache for one JS-SDK ticket (WeCom has no force mode for tickets)."""
        return TokenCache(f"{self._token_name()}:{name}", lambda _force: self._fetch_ticket(path, params), _redis,
                          margin_s=get_options().token_margin_s, can_force=False)

    def _fetch_ticket(self, path: str, params: dict) -> tuple[str, int]:
        answer = self.call("GET", path, params=params)
        if not answer.get("ticket"):
            raise TransportError(path, "bad_json", "no ticket in answer")
        return str(answer["ticket"]), int(answer.get("expires_in") or 7200)


def _redis():
    return get_redis()


_clients: dict[tuple, _Client] = {}
_clients_lock = threading.Lock()


def _cached(key: tuple, make: Callable[[], _Client]) -> _Client:
    """One client per platform and settings (its token cache and connection pool live in it)."""
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = make()
        return client


def get_wechat_client() -> WeChatClient:
    """The OA client for the current settings (cached; raises NotConfigured)."""
    ch, opts = get_settings().wechat, get_options()
    key = ("mp", ch.api_base, ch.app_id, ch.secret, opts.http_timeout_s, opts.wechat_token_mode)
    return _cached(key, lambda: WeChatClient(ch, opts.http_timeout_s, opts.wechat_token_mode))  # type: ignore[return-value]


def get_wecom_client() -> WeComClient:
    """The WeCom app client for the current settings (cached; raises NotConfigured)."""
    ch, opts = get_settings().wecom, get_options()
    key = ("wecom", ch.api_base, ch.app_id, ch.secret, ch.agent_id, opts.http_timeout_s)
    return _cached(key, lambda: WeComClient(ch, opts.http_timeout_s))  # type: ignore[return-value]


def reset_clients() -> None:
    """Forget cached clients (tests change settings between cases)."""
    with _clients_lock:
        _clients.clear()
