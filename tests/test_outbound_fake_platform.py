"""The fake platform answers like the real APIs (token rules, errcodes) and its
control endpoints do what tests rely on. Plain HTTP, no project code."""
from __future__ import annotations

import time

import requests


def _get(fp, path, **params):
    return requests.get(fp.base_url + path, params=params, timeout=5).json()


def _post(fp, path, body, **params):
    return requests.post(fp.base_url + path, params=params, json=body, timeout=5).json()


def _oa_token(fp, appid="wxA", secret="s"):
    return _get(fp, "/cgi-bin/token", grant_type="client_credential", appid=appid, secret=secret)


def _wecom_token(fp):
    return _get(fp, "/cgi-bin/gettoken", corpid="ww1", corpsecret="s")["access_token"]


def test_oa_tokens_rotate_after_overlap_and_expire(fake_platform):
    first = _oa_token(fake_platform)
    assert first["expires_in"] == 7200 and first["access_token"]
    text = {"touser": "o_a", "msgtype": "text", "text": {"content": "hi"}}
    assert _post(fake_platform, "/cgi-bin/message/custom/send", text, access_token=first["access_token"])["errcode"] == 0
    fake_platform.config(token_overlap_s=1.0)
    second = _oa_token(fake_platform)
    # Both valid during the overlap, the old one refused after it.
    assert _post(fake_platform, "/cgi-bin/message/custom/send", text, access_token=first["access_token"])["errcode"] == 0
    time.sleep(1.05)
    assert _post(fake_platform, "/cgi-bin/message/custom/send", text, access_token=first["access_token"])["errcode"] == 40001
    assert _post(fake_platform, "/cgi-bin/message/custom/send", text, access_token=second["access_token"])["errcode"] == 0
    fake_platform.expire_tokens()
    assert _post(fake_platform, "/cgi-bin/message/custom/send", text, access_token=second["access_token"])["errcode"] == 42001
    assert _post(fake_platform, "/cgi-bin/message/custom/send", text)["errcode"] == 41001
    # WeCom calls do not take OA tokens.
    assert _post(fake_platform, "/cgi-bin/message/send", {}, access_token=second["access_token"])["errcode"] == 40014


def test_token_endpoint_errors(fake_platform):
    assert _get(fake_platform, "/cgi-bin/token", grant_type="x", appid="a", secret="s")["errcode"] == 40002
    assert _get(fake_platform, "/cgi-bin/token", grant_type="client_credential", secret="s")["errcode"] == 41002
    assert _get(fake_platform, "/cgi-bin/gettoken", corpid="ww1")["errcode"] == 41004
    fake_platform.config(credentials={"wxA": "right", "ww1": "right"})
    assert _oa_token(fake_platform, "wxA", "wrong")["errcode"] == 40125
    assert _oa_token(fake_platform, "wxB", "right")["errcode"] == 40013
    assert _get(fake_platform, "/cgi-bin/gettoken", corpid="ww1", corpsecret="bad")["errcode"] == 40001
    stable = _post(fake_platform, "/cgi-bin/stable_token", {"grant_type": "client_credential", "appid": "wxA",
                                                            "secret": "right"})
    again = _post(fake_platform, "/cgi-bin/stable_token", {"grant_type": "client_credential", "appid": "wxA",
                                                           "secret": "right"})
    assert stable["access_token"] == again["access_token"]  # normal mode does not rotate
    forced = _post(fake_platform, "/cgi-bin/stable_token", {"grant_type": "client_credential", "appid": "wxA",
                                                            "secret": "right", "force_refresh": True})
    assert forced["access_token"] != stable["access_token"]
    text = {"touser": "o_a", "msgtype": "text", "text": {"content": "hi"}}
    assert _post(fake_platform, "/cgi-bin/message/custom/send", text,
                 access_token=stable["access_token"])["errcode"] == 40001


def test_message_errors_like_the_real_apis(fake_platform):
    oa = _oa_token(fake_platform)["access_token"]
    wc = _wecom_token(fake_platform)
    custom = "/cgi-bin/message/custom/send"
    assert _post(fake_platform, custom, {"touser": "unknown1", "msgtype": "text", "text": {"content": "x"}},
                 access_token=oa)["errcode"] == 40003
    assert _post(fake_platform, custom, {"touser": "o_a", "msgtype": "bogus"}, access_token=oa)["errcode"] == 40008
    assert _post(fake_platform, custom, {"touser": "o_a", "msgtype": "text", "text": {"content": ""}},
                 access_token=oa)["errcode"] == 44004
    bad_json = requests.post(fake_platform.base_url + custom, params={"access_token": oa}, data=b"{nope",
                             timeout=5).json()
    assert bad_json["errcode"] == 47001
    fake_platform.config(closed_window=["o_late"], unsubscribed=["o_gone"])
    assert _post(fake_platform, custom, {"touser": "o_late", "msgtype": "text", "text": {"content": "x"}},
                 access_token=oa)["errcode"] == 45015
    tpl = "/cgi-bin/message/template/send"
    assert _post(fake_platform, tpl, {"touser": "o_a", "data": {}}, access_token=oa)["errcode"] == 40037
    assert _post(fake_platform, tpl, {"touser": "o_gone", "template_id": "T", "data": {}},
                 access_token=oa)["errcode"] == 43004
    ok = _post(fake_platform, tpl, {"touser": "o_a", "template_id": "T", "data": {}}, access_token=oa)
    assert ok["errcode"] == 0 and ok["msgid"]

    send = "/cgi-bin/message/send"
    assert _post(fake_platform, send, {"touser": "a", "msgtype": "text", "text": {"content": "x"}},
                 access_token=wc)["errcode"] == 41011
    assert _post(fake_platform, send, {"touser": "unknown_a", "agentid": 1, "msgtype": "text",
                                       "text": {"content": "x"}}, access_token=wc)["errcode"] == 81013
    assert _post(fake_platform, send, {"touser": "a", "agentid": 1, "msgtype": "textcard",
                                       "textcard": {"description": "d", "url": "u"}}, access_token=wc)["errcode"] == 41016
    assert _post(fake_platform, send, {"touser": "a", "agentid": 1, "msgtype": "text",
                                       "text": {"content": "长" * 1000}}, access_token=wc)["errcode"] == 45002
    card = {"card_type": "button_interaction", "task_id": "t1", "main_title": {"title": "x"},
            "button_list": [{"text": "ok", "key": "k"}]}
    sent = _post(fake_platform, send, {"touser": "a", "agentid": 1, "msgtype": "template_card",
                                       "template_card": card}, access_token=wc)
    code = sent["response_code"]
    upd = {"userids": ["a"], "agentid": 1, "response_code": code, "button": {"replace_name": "done"}}
    update = "/cgi-bin/message/update_template_card"
    assert _post(fake_platform, update, upd, access_token=wc)["errcode"] == 0
    assert _post(fake_platform, update, upd, access_token=wc)["errcode"] == 40035  # a code works once

    chat = _post(fake_platform, "/cgi-bin/appchat/create", {"name": "值班", "owner": "a", "userlist": ["a", "b"]},
                 access_token=wc)
    assert chat["errcode"] == 0
    assert _post(fake_platform, "/cgi-bin/appchat/update", {"chatid": chat["chatid"], "del_user_list": ["b"]},
                 access_token=wc)["errcode"] == 0
    info = _get(fake_platform, "/cgi-bin/appchat/get", chatid=chat["chatid"], access_token=wc)
    assert info["chat_info"]["userlist"] == ["a"]
    assert _get(fake_platform, "/cgi-bin/appchat/get", chatid="nochat", access_token=wc)["errcode"] == 86003
    assert _post(fake_platform, "/cgi-bin/externalcontact/add_msg_template",
                 {"chat_type": "group", "sender": "a", "text": {"content": "通知"}}, access_token=wc)["errcode"] == 0
    paths = [e["path"] for e in fake_platform.sent()]
    assert paths == ["/cgi-bin/message/template/send", send, update, "/cgi-bin/appchat/create",
                     "/cgi-bin/appchat/update", "/cgi-bin/externalcontact/add_msg_template"]


def test_control_endpoints(fake_platform):
    wc = _wecom_token(fake_platform)
    body = {"touser": "a", "agentid": 1, "msgtype": "text", "text": {"content": "x"}}
    fake_platform.fault("/cgi-bin/message/send", errcode=45009, times=2)
    fake_platform.fault("/cgi-bin/message/send", status=503)
    answers = [requests.post(fake_platform.base_url + "/cgi-bin/message/send", params={"access_token": wc},
                             json=body, timeout=5) for _ in range(4)]
    assert [a.json()["errcode"] for a in answers[:2]] == [45009, 45009]
    assert answers[2].status_code == 503
    assert answers[3].json()["errcode"] == 0
    sent = fake_platform.sent()
    assert len(sent) == 1 and sent[0]["query"] == {} and sent[0]["json"] == body and sent[0]["time"] > 0
    stats = fake_platform.stats()
    assert stats["calls"]["/cgi-bin/message/send"] == 4 and stats["faults_fired"]["/cgi-bin/message/send"] == 3
    fake_platform.clear()
    assert fake_platform.sent() == []
    fake_platform.fault("/cgi-bin/message/send", errcode=-1, times=5)
    fake_platform.clear_faults()
    assert _post(fake_platform, "/cgi-bin/message/send", body, access_token=wc)["errcode"] == 0
    assert requests.post(fake_platform.base_url + "/_faults", json={"path": "/x"}, timeout=5).status_code == 400
    assert requests.post(fake_platform.base_url + "/_config", json={"nope": 1}, timeout=5).status_code == 400


def test_delayed_call_that_outlives_a_clear_is_not_recorded(fake_platform):
    wc = _wecom_token(fake_platform)
    fake_platform.fault("/cgi-bin/message/send", delay_s=1.0)
    body = {"touser": "a", "agentid": 1, "msgtype": "text", "text": {"content": "late"}}
    try:
        requests.post(fake_platform.base_url + "/cgi-bin/message/send", params={"access_token": wc}, json=body,
                      timeout=0.1)
    except requests.Timeout:
        pass
    fake_platform.clear()
    time.sleep(1.1)
    assert fake_platform.sent() == []


def test_customer_group_lookup(fake_platform):
    wc = _wecom_token(fake_platform)
    fake_platform.config(customer_groups={"wrvip01": {"name": "VIP业主群", "owner": "kefu_xiaomei",
                                                      "member_list": [{"userid": "wm_wang", "type": 2}]}})
    got = _post(fake_platform, "/cgi-bin/externalcontact/groupchat/get", {"chat_id": "wrvip01", "need_name": 1},
                access_token=wc)
    assert got["errcode"] == 0 and got["group_chat"]["member_list"][0]["userid"] == "wm_wang"
    assert _post(fake_platform, "/cgi-bin/externalcontact/groupchat/get", {"chat_id": "wrnone"},
                 access_token=wc)["errcode"] == 40050
