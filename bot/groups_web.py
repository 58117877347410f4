"""`/sidebar`: the staff admin's chat-toolbar page (聊天工具栏) in WeCom.

No bot can post into a customer group (PLATFORM.md); the staff member can, from
this page, through the JS-SDK's `sendChatMessage` into the chat they have open.
It lists the suggested replies waiting for a group (handlers/groups/hooks.py)
and sends one with a tap; the page then marks it sent.

Opened from the group_task message (`/sidebar?group=<chat_id>&task=<outbox id>`)
or from the toolbar with no parameters, in which case the JS asks WeCom which
group chat is open (`getCurExternalChat`) and reloads for it.

Suggestions carry no personal data (they are masked when created), which is
why the page needs no more than the group id; OAuth sign-in of the staff
member is a later step.
"""
from __future__ import annotations

import os

from flask import Blueprint, Response, abort, jsonify, render_template_string, request
from sqlalchemy import select

from bot import clock
from store.db import session_scope
from store.models import AuditLog, Group
from store.models.groups import GroupSuggestion

bp = Blueprint("groups_web", __name__)

# The real JS-SDK; an empty GUANJIA_JSSDK_URL leaves it out (tests provide a stand-in).
DEFAULT_JSSDK = "https://res.wx.qq.com/open/js/jweixin-1.2.0.js"

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
{% if jssdk %}<script src="{{ jssdk }}"></script>{% endif %}
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
  function ready(fn) {
    // With a server-provided agentConfig (jsapi ticket signature) the SDK must be configured first.
    if (window.GUANJIA_AGENT_CONFIG && window.wx && wx.agentConfig) {
      var c = window.GUANJIA_AGENT_CONFIG; c.success = fn;
      c.fail = function (r) { status.textContent = "企业微信授权失败：" + (r && r.errMsg); };
      wx.agentConfig(c);
    } else { fn(); }
  }
  function markSent(id, btn) {
    fetch("{{ url_prefix }}/sidebar/api/sent/" + id, {method: "POST",
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
    });
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


@bp.get("/sidebar")
def sidebar() -> str:
    group_id = (request.args.get("group") or "").strip() or None
    items, group_name = [], None
    if group_id:
        with session_scope() as s:
            group = s.scalar(select(Group).where(Group.chat_id == group_id))
            group_name = group.name if group else None
            rows = s.scalars(select(GroupSuggestion).where(GroupSuggestion.group_chat_id == group_id,
                                                           GroupSuggestion.state == "pending")
                             .order_by(GroupSuggestion.id.desc()).limit(20)).all()
            items = [{"id": r.id, "text": r.text, "question": r.question} for r in rows]
    jssdk = os.environ.get("GUANJIA_JSSDK_URL", DEFAULT_JSSDK)
    return render_template_string(PAGE, items=items, group_id=group_id, group_name=group_name, jssdk=jssdk,
                                  url_prefix=request.script_root)


@bp.post("/sidebar/api/sent/<int:suggestion_id>")
def mark_sent(suggestion_id: int) -> Response:
    body = request.get_json(silent=True) or {}
    with session_scope() as s:
        row = s.get(GroupSuggestion, suggestion_id)
        # The group must match: a stray id cannot mark another group's suggestion.
        if row is None or row.group_chat_id != body.get("group"):
            abort(404)
        if row.state == "pending":
            row.state, row.sent_at = "sent", clock.now()
            s.add(AuditLog(actor=row.staff_userid, action="group.suggestion.sent", target=row.group_chat_id,
                           detail={"suggestion": row.id}))
        return jsonify({"id": row.id, "state": row.state})
