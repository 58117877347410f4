"""`/sidebar`: the staff admin's chat-toolbar page (聊天工具栏) in WeCom.

No bot can post into a customer group (PLATFORM.md); the staff member can, from
this page, through the JS-SDK's `sendChatMessage` into the chat they have open.
It lists the suggested replies waiting for a group (handlers/groups/hooks.py)
and sends one with a tap; the page then marks it sent.

Opened from the group_task message (`/sidebar?group=<chat_id>&task=<outbox id>`)
or from the toolbar with no parameters, in which case the JS asks WeCom which
group chat is open (`getCurExternalChat`) and reloads for it.

Sign-in: WeCom opens the page with OAuth2 (snsapi_base). Without a sidebar
session the page redirects to the authorize URL (GUANJIA_WECOM_OAUTH_BASE,
default open.weixin.qq.com); `/sidebar/auth?code=&state=` exchanges the code
for the member's userid (`auth/getuserinfo`) and sets a signed cookie
(`guanjia_sidebar`, its own cookie and salt, apart from the console's session;
key GUANJIA_SECRET_KEY, else derived from WECOM_SECRET). The `state` is a nonce
kept in a short-lived signed cookie with the page to return to, so nobody can
sign another browser in with their own code. The userid must be an active
`staff` row (checked on every request); a member sees and marks only the
suggestions of groups they are the staff admin of, supervisors and managers
all of them. There is no bypass: tests sign in through the fake platform.

JS-SDK: `GET /sidebar/api/agent-config?url=<page URL without #>` answers what
`wx.agentConfig` needs, signed with the app's agent_config jsapi ticket, and under
"config" what `wx.config` needs (clients before 3.0.24 want it first), signed with the
company's jsapi ticket (`WeComClient.agent_config_ticket` / `corp_jsapi_ticket`, cached
in Redis like the token). When WeCom refuses a signature the page posts
`/sidebar/api/jsapi-refresh` (the server drops the cached ticket, at most once a minute
per ticket) and tries once more.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, abort, jsonify, redirect, render_template_string, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from bot.outbound.clients import ApiError, NotConfigured, PlatformError, get_wecom_client
from bot.outbound.tokens import TokenUnavailable
from ground import clock
from ground.config import get_settings
from store.db import session_scope
from store.models import AuditLog, Group, Staff
from store.models.groups import GroupSuggestion

log = logging.getLogger(__name__)

bp = Blueprint("groups_web", __name__)

# The real JS-SDK (jwxwork adds wx.agentConfig); GUANJIA_JSSDK_URL replaces the list
# (space-separated), empty leaves it out (tests provide a stand-in).
DEFAULT_JSSDK = ("https://res.wx.qq.com/open/js/jweixin-1.2.0.js"
                 " https://open.work.weixin.qq.com/wwopen/js/jwxwork-1.0.0.js")
DEFAULT_OAUTH_BASE = "https://open.weixin.qq.com"
SESSION_COOKIE, LOGIN_COOKIE = "guanjia_sidebar", "guanjia_sidebar_login"
SESSION_MAX_AGE_S = 12 * 3600  # one working day; WeCom signs the member in again silently (snsapi_base)
LOGIN_MAX_AGE_S = 600  # from the redirect to the callback (WeCom codes live 5 minutes)
LEAD_ROLES = ("supervisor", "manager")  # see every group's suggestions
JS_API_LIST = ["sendChatMessage", "getCurExternalChat"]

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>群回复建议</title>
<style>
 body{font:14px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:12px;background:#f5f6f7}
 h1{font-size:15px;margin:0 0 8px} .empty{color:#888}
 .s{background:#fff;border-radius:8px;padding:10px;margin-bottom:10px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
 .q{color:#666;font-size:12px;margin-bottom:4px} .t{white-space:pre-wrap}
 button{margin-top:8px;background:#07c160;color:#fff;border:0;border-radius:4px;padding:6px 14px;font-size:14px}
 button[disabled]{background:#b2b2b2} #status{color:#c00;font-size:12px;min-height:1em}
</style>
{% for src in jssdk %}<script src="{{ src }}" referrerpolicy="origin"></script>
{% endfor %}
</head><body data-group="{{ group_id or '' }}">
<h1>{{ group_name or '群回复建议' }}</h1>
<div id="status"></div>
{% if not group_id %}<p class="empty" id="locating">正在识别当前群聊…</p>{% endif %}
{% if group_id and not items %}<p class="empty">暂无待发送的回复。</p>{% endif %}
<div id="list">
{% for s in items %}
 <div class="s" id="s{{ s.id }}" data-id="{{ s.id }}">
  <div class="q">{{ s.question or '' }}</div>
  <div class="t" id="t{{ s.id }}">{{ s.text }}</div>
  <button type="button" class="send" data-id="{{ s.id }}">发送到群</button>
 </div>
{% endfor %}
</div>
<script>
(function () {
  var group = document.body.getAttribute("data-group");
  var status = document.getElementById("status");
  function invoke(name, args, cb) {
    if (!window.wx || !wx.invoke) { status.textContent = "请在企业微信中打开"; return; }
    wx.invoke(name, args, cb);
  }
  var api = "{{ url_prefix }}/sidebar/api/";
  function json(r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); }
  function loadConfig() {
    return fetch(api + "agent-config?url=" + encodeURIComponent(location.href.split("#")[0]),
                 {credentials: "same-origin"}).then(json);
  }
  function refused(ticket, r) {  // WeCom refused the signature made with this ticket
    var e = new Error((r && r.errMsg) || ticket); e.ticket = ticket; return e;
  }
  function configure(c) {
    // wx.config (company ticket; clients before 3.0.24 need it), then wx.agentConfig (app ticket)
    // in its ready callback. Late callbacks of a settled attempt are ignored: wx.ready/wx.error stack up.
    return new Promise(function (resolve, reject) {
      var done = false;
      function fail(ticket) { return function (r) { if (!done) { done = true; reject(refused(ticket, r)); } }; }
      function agent() {
        if (done) return;
        wx.agentConfig({corpid: c.corpid, agentid: c.agentid, timestamp: c.timestamp, nonceStr: c.nonceStr,
                        signature: c.signature, jsApiList: c.jsApiList, fail: fail("agent"),
                        success: function () { if (!done) { done = true; resolve(); } }});
      }
      if (!c.config || !wx.config) { agent(); return; }  // no company ticket: 3.0.24+ manage without
      wx.config(c.config);
      wx.ready(agent);
      wx.error(fail("corp"));
    });
  }
  function refreshTickets(e) {
    // A stale ticket: the server drops its cached copy (at most once a minute) and we try once more.
    return fetch(api + "jsapi-refresh", {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({tickets: [e.ticket], errMsg: e.message})})
      .then(json);
  }
  var configured = null;
  function ready(fn, onfail) {
    if (!window.wx || !wx.agentConfig) { fn(); return; }  // invoke() then says where to open the page
    if (!configured) {  // once per page
      configured = loadConfig().then(configure).catch(function (e) {
        if (!e.ticket) throw e;  // not a refused signature: a retry would not help
        return refreshTickets(e).then(loadConfig).then(configure);
      });
      configured.catch(function () { configured = null; });  // the next tap tries again
    }
    configured.then(fn, function (e) {
      status.textContent = "企业微信授权失败：" + e.message;
      if (onfail) onfail();
    });
  }
  function markSent(id, btn) {
    fetch("{{ url_prefix }}/sidebar/api/sent/" + id, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({group: group})})
      .then(function (r) { if (!r.ok) throw new Error(r.status); btn.textContent = "已发送"; btn.disabled = true; })
      .catch(function (e) { status.textContent = "已发送，但记录失败：" + e.message; });
  }
  document.getElementById("list").addEventListener("click", function (ev) {
    var btn = ev.target.closest("button.send");
    if (!btn || btn.disabled) return;
    var id = btn.getAttribute("data-id");
    var text = document.getElementById("t" + id).textContent;
    btn.disabled = true; status.textContent = "";
    ready(function () {
      invoke("sendChatMessage", {msgtype: "text", enterChat: true, text: {content: text}}, function (res) {
        if (res && res.err_msg === "sendChatMessage:ok") { markSent(id, btn); }
        else { btn.disabled = false; status.textContent = "发送失败：" + (res && res.err_msg); }
      });
    }, function () { btn.disabled = false; });
  });
  if (!group) {
    ready(function () {
      invoke("getCurExternalChat", {}, function (res) {
        if (res && res.err_msg === "getCurExternalChat:ok" && res.chatId) {
          location.search = "?group=" + encodeURIComponent(res.chatId);
        } else { document.getElementById("locating").textContent = "请在客户群聊的侧边栏中打开此页面。"; }
      });
    });
  }
})();
</script>
</body></html>"""


ERROR_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ title }}</title>
<style>body{font:14px/1.6 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:24px 16px;background:#f5f6f7}
h1{font-size:16px} p{color:#555} a{color:#576b95}</style></head>
<body><h1 id="error">{{ title }}</h1><p>{{ detail }}</p>{% if retry %}<p><a href="{{ retry }}">重新登录</a></p>{% endif %}</body></html>"""


def _error_page(status: int, title: str, detail: str, retry: str | None = None) -> Response:
    return Response(render_template_string(ERROR_PAGE, title=title, detail=detail, retry=retry), status=status,
                    mimetype="text/html")


# --- settings -----------------------------------------------------------------------------

def _wecom():
    return get_settings().wecom


def _secret() -> bytes | None:
    """GUANJIA_SECRET_KEY, else a key derived from WECOM_SECRET (never the secret itself)."""
    key = os.environ.get("GUANJIA_SECRET_KEY")
    if key:
        return key.encode()
    wecom_secret = _wecom().secret
    if wecom_secret:
        return hmac.new(wecom_secret.encode(), b"guanjia sidebar session", hashlib.sha256).hexdigest().encode()
    return None


def _signer(salt: str) -> URLSafeTimedSerializer | None:
    key = _secret()
    return URLSafeTimedSerializer(key, salt=salt, signer_kwargs={"digest_method": hashlib.sha256}) if key else None


def _public_base() -> str:
    """Where the browser reaches this app: GUANJIA_PUBLIC_URL, else the request's own root."""
    return (os.environ.get("GUANJIA_PUBLIC_URL") or request.url_root).rstrip("/")


def _cookie_kw(max_age: int) -> dict:
    return {"max_age": max_age, "httponly": True, "samesite": "Lax", "path": (request.script_root or "") + "/",
            "secure": _public_base().startswith("https://")}


def agent_config_signature(ticket: str, nonce: str, timestamp: int | str, url: str) -> str:
    """WeCom JS-SDK signature: sha1 over the four fields in this order (keys lower case)."""
    plain = f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(plain.encode()).hexdigest()


# --- sign-in ------------------------------------------------------------------------------

def _signed_in_userid() -> str | None:
    signer, raw = _signer("guanjia.sidebar.session"), request.cookies.get(SESSION_COOKIE)
    if not (signer and raw):
        return None
    try:
        data = signer.loads(raw, max_age=SESSION_MAX_AGE_S)
    except BadSignature:  # also SignatureExpired
        return None
    return data.get("u") if isinstance(data, dict) and isinstance(data.get("u"), str) else None


def _staff(s, userid: str | None) -> Staff | None:
    if not userid:
        return None
    return s.scalar(select(Staff).where(Staff.userid == userid, Staff.active.is_(True)))


def _may_handle(s, staff: Staff, group_chat_id: str) -> bool:
    """The group's staff admin, or any supervisor / manager."""
    if staff.role in LEAD_ROLES:
        return True
    group = s.scalar(select(Group).where(Group.chat_id == group_chat_id))
    return bool(group and group.staff_admin and group.staff_admin.userid == staff.userid)


def _start_sign_in() -> Response:
    wecom, signer = _wecom(), _signer("guanjia.sidebar.login")
    if not (wecom.app_id and wecom.agent_id and signer):
        return _error_page(503, "侧边栏未配置", "需要 WECOM_CORP_ID、WECOM_AGENT_ID 和 WECOM_SECRET（或 GUANJIA_SECRET_KEY）。")
    state = secrets.token_hex(16)
    here = request.full_path.rstrip("?")
    back = (request.script_root or "") + here
    params = {"appid": wecom.app_id, "redirect_uri": _public_base() + "/sidebar/auth", "response_type": "code",
              "scope": "snsapi_base", "state": state, "agentid": wecom.agent_id}
    base = (os.environ.get("GUANJIA_WECOM_OAUTH_BASE") or DEFAULT_OAUTH_BASE).rstrip("/")
    resp = redirect(f"{base}/connect/oauth2/authorize?{urlencode(params)}#wechat_redirect", code=302)
    resp.set_cookie(LOGIN_COOKIE, signer.dumps({"s": state, "n": back}), **_cookie_kw(LOGIN_MAX_AGE_S))
    return resp


@bp.get("/sidebar/auth")
def sidebar_auth() -> Response:
    retry = (request.script_root or "") + "/sidebar"
    code, state = request.args.get("code") or "", request.args.get("state") or ""
    signer = _signer("guanjia.sidebar.login")
    pending = None
    if signer and request.cookies.get(LOGIN_COOKIE):
        try:
            pending = signer.loads(request.cookies[LOGIN_COOKIE], max_age=LOGIN_MAX_AGE_S)
        except BadSignature:
            pending = None
    if not isinstance(pending, dict) or not state or not hmac.compare_digest(str(pending.get("s", "")), state):
        return _error_page(400, "登录已过期", "请从企业微信侧边栏重新打开此页面。", retry)
    if not code:
        return _error_page(400, "未获得授权", "企业微信没有返回登录码。", retry)
    try:
        info = get_wecom_client().oauth_userinfo(code)
    except NotConfigured as exc:
        return _error_page(503, "侧边栏未配置", str(exc))
    except ApiError as exc:
        log.info("sidebar sign-in refused: %s", exc)
        if exc.errcode in (40029, 40163, 41008):
            return _error_page(400, "登录码无效", "登录码无效或已使用，请重新打开此页面。", retry)
        return _error_page(502, "企业微信登录失败", f"错误码 {exc.errcode}。", retry)
    except PlatformError as exc:
        log.warning("sidebar sign-in: WeCom unreachable: %s", exc)
        return _error_page(502, "企业微信暂时无法访问", "请稍后重试。", retry)
    userid = info.get("userid") or info.get("UserId")
    with session_scope() as s:
        known = _staff(s, userid) is not None
    if not known:
        return _error_page(403, "无权使用", "此页面仅供物业员工使用。")
    nxt = str(pending.get("n") or retry)
    if not nxt.startswith(retry):  # only back into the sidebar
        nxt = retry
    resp = redirect(nxt, code=302)
    resp.set_cookie(SESSION_COOKIE, _signer("guanjia.sidebar.session").dumps({"u": userid}),
                    **_cookie_kw(SESSION_MAX_AGE_S))
    resp.delete_cookie(LOGIN_COOKIE, path=(request.script_root or "") + "/")
    with session_scope() as s:
        s.add(AuditLog(actor=userid, action="sidebar.sign_in", target=None, detail={}))
    return resp


# --- pages ----------------------------------------------------------------------------------

@bp.get("/sidebar")
def sidebar() -> Response | str:
    group_id = (request.args.get("group") or "").strip() or None
    userid = _signed_in_userid()
    if userid is None:
        return _start_sign_in()
    items, group_name = [], None
    with session_scope() as s:
        staff = _staff(s, userid)
        if staff is None:
            return _error_page(403, "无权使用", "此页面仅供物业员工使用。")
        if group_id:
            if not _may_handle(s, staff, group_id):
                return _error_page(403, "不是您负责的群", "只能查看和发送您作为群管理员的客户群的回复建议。")
            group = s.scalar(select(Group).where(Group.chat_id == group_id))
            group_name = group.name if group else None
            rows = s.scalars(select(GroupSuggestion).where(GroupSuggestion.group_chat_id == group_id,
                                                           GroupSuggestion.state == "pending")
                             .order_by(GroupSuggestion.id.desc()).limit(20)).all()
            items = [{"id": r.id, "text": r.text, "question": r.question} for r in rows]
    jssdk = os.environ.get("GUANJIA_JSSDK_URL", DEFAULT_JSSDK).split()
    return render_template_string(PAGE, items=items, group_id=group_id, group_name=group_name, jssdk=jssdk,
                                  url_prefix=request.script_root)


def _api_staff() -> tuple[str | None, tuple[Response, int] | None]:
    """The signed-in active staff member's userid, or the JSON error to answer (401 / 403)."""
    userid = _signed_in_userid()
    if userid is None:
        return None, (jsonify({"error": "not signed in"}), 401)
    with session_scope() as s:
        if _staff(s, userid) is None:
            return None, (jsonify({"error": "not staff"}), 403)
    return userid, None


def _sidebar_url(raw: str) -> str | None:
    """The page URL to sign (without #), if it is a /sidebar page of this app; else None."""
    url = raw.split("#", 1)[0]
    parts = urlsplit(url)
    hosts = {request.host, urlsplit(_public_base()).netloc}
    if parts.scheme not in ("http", "https") or parts.netloc not in hosts \
            or not parts.path.startswith((request.script_root or "") + "/sidebar"):
        return None
    return url


def _signed(ticket: str, url: str) -> dict:
    nonce, timestamp = secrets.token_hex(8), int(clock.now().timestamp())
    return {"timestamp": timestamp, "nonceStr": nonce,
            "signature": agent_config_signature(ticket, nonce, timestamp, url)}


def _corp_config(client, url: str) -> dict | None:
    """What `wx.config` needs (the company's ticket), or None without that ticket: clients from
    3.0.24 on do without wx.config, so the page still works for most members."""
    try:
        ticket = client.corp_jsapi_ticket()
    except (PlatformError, TokenUnavailable) as exc:
        log.warning("sidebar agent-config: no corp jsapi ticket, wx.config left out: %s", exc)
        return None
    # beta: WeCom's wx.invoke APIs (sendChatMessage...) need it.
    return {"beta": True, "appId": client.channel.app_id, **_signed(ticket, url), "jsApiList": JS_API_LIST}


@bp.get("/sidebar/api/agent-config")
def agent_config() -> Response:
    """wx.agentConfig's fields (app ticket) at the top level, wx.config's (corp ticket) under "config"."""
    _userid, refused = _api_staff()
    if refused:
        return refused
    url = _sidebar_url(request.args.get("url") or "")
    if url is None:
        return jsonify({"error": "url must be this sidebar page"}), 400
    try:
        client = get_wecom_client()
        ticket = client.agent_config_ticket()
    except (PlatformError, TokenUnavailable) as exc:
        log.warning("sidebar agent-config: no ticket: %s", exc)
        return jsonify({"error": "no jsapi ticket"}), 502
    return jsonify({"corpid": client.channel.app_id, "agentid": str(client.channel.agent_id), **_signed(ticket, url),
                    "jsApiList": JS_API_LIST, "config": _corp_config(client, url)})


@bp.post("/sidebar/api/jsapi-refresh")
def jsapi_refresh() -> Response:
    """The page's wx.config / wx.agentConfig failed: drop the named cached tickets ("corp",
    "agent") so the next agent-config fetches fresh ones; each at most once a minute."""
    userid, refused = _api_staff()
    if refused:
        return refused
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    kinds = body.get("tickets") or ["corp", "agent"]
    if not isinstance(kinds, list) or not all(k in ("corp", "agent") for k in kinds):
        return jsonify({"error": "tickets must be a list of corp, agent"}), 400
    try:
        client = get_wecom_client()
    except PlatformError as exc:
        return jsonify({"error": str(exc)}), 503
    discarded = [k for k in dict.fromkeys(kinds) if client.discard_jsapi_ticket(k)]
    kept = [k for k in dict.fromkeys(kinds) if k not in discarded]
    log.warning("sidebar: WeCom refused a JS-SDK signature for %s (%r); tickets discarded %s, kept %s "
                "(discarded within the last minute)", userid, str(body.get("errMsg") or "")[:200], discarded, kept)
    return jsonify({"discarded": discarded, "kept": kept})


@bp.post("/sidebar/api/sent/<int:suggestion_id>")
def mark_sent(suggestion_id: int) -> Response:
    body = request.get_json(silent=True) or {}
    userid = _signed_in_userid()
    if userid is None:
        return jsonify({"error": "not signed in"}), 401
    with session_scope() as s:
        staff = _staff(s, userid)
        if staff is None:
            return jsonify({"error": "not staff"}), 403
        row = s.get(GroupSuggestion, suggestion_id)
        # The group must match: a stray id cannot mark another group's suggestion.
        if row is None or row.group_chat_id != body.get("group"):
            abort(404)
        if not _may_handle(s, staff, row.group_chat_id):
            return jsonify({"error": "not your group"}), 403
        if row.state == "pending":
            row.state, row.sent_at = "sent", clock.now()
            s.add(AuditLog(actor=staff.userid, action="group.suggestion.sent", target=row.group_chat_id,
                           detail={"suggestion": row.id, "suggested_for": row.staff_userid}))
        return jsonify({"id": row.id, "state": row.state})
