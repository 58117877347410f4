"""The sender over real HTTP against the fake platform: every push kind, retries,
time-outs, permanent errors with the staff report, idempotency."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

from handlers.message import Push
from tests.outbound_helpers import add_push, mp_text, row, rows, wecom_text

SEND = "/cgi-bin/message/send"
CUSTOM = "/cgi-bin/message/custom/send"


def test_every_kind_is_rendered_and_recorded(outbound_env, fake_platform):
    from bot.outbound.sender import send_one

    card = {"card_type": "button_interaction", "task_id": "ticket-T12-1",
            "main_title": {"title": "新工单 T12", "desc": "1-1201 水管漏水"},
            "button_list": [{"text": "接单", "style": 1, "key": "ticket:accept:T12"}]}
    pushes = [
        mp_text("o_li", "您的报修已受理"),
        Push("mp", "o_li", "template", {"template_id": "TPL_BILL", "data": {"first": {"value": "账单"}},
                                        "url": "https://example.invalid/bill"}),
        wecom_text("kefu_xiaomei", "新咨询"),
        Push("wecom", "kefu_xiaomei", "markdown", {"content": "**紧急** 工单 T12"}),
        Push("wecom", "kefu_xiaomei", "textcard", {"title": "工单 T12", "description": "水管漏水",
                                                  "url": "https://example.invalid/t/12", "btntxt": "详情"}),
        Push("wecom", "weixiu_laozhou|weixiu_xiaoli", "template_card", {"card": card}),
        Push("wecom", "weixiu_laozhou,weixiu_xiaoli", "update_card",
             {"response_code": "RC-from-callback", "button": {"replace_name": "已由老周接单"}}),
        Push("wecom", "wrstaffchat", "appchat", {"msgtype": "text", "content": "今日值班：老周"}),
        Push("wecom", "kefu_xiaomei", "group_task", {"group_id": "wrvip01", "group_name": "VIP业主群",
                                                    "text": "各位业主好，明早9点停水。", "reason": "群内提问"}),
    ]
    ids = [add_push(p) for p in pushes]
    assert [send_one(i) for i in ids] == ["sent"] * len(ids)

    sent = fake_platform.sent()
    by_path = {}
    for e in sent:
        by_path.setdefault(e["path"], []).append(e)
    assert by_path[CUSTOM][0]["json"] == {"touser": "o_li", "msgtype": "text", "text": {"content": "您的报修已受理"}}
    assert "access_token" not in by_path[CUSTOM][0]["query"]
    assert by_path["/cgi-bin/message/template/send"][0]["json"]["template_id"] == "TPL_BILL"
    msgs = by_path[SEND]
    assert [m["json"]["msgtype"] for m in msgs] == ["text", "markdown", "textcard", "template_card", "text"]
    assert all(m["json"]["agentid"] == 1000002 for m in msgs)
    assert msgs[3]["json"]["touser"] == "weixiu_laozhou|weixiu_xiaoli"
    assert msgs[3]["json"]["template_card"]["task_id"] == "ticket-T12-1"
    update = by_path["/cgi-bin/message/update_template_card"][0]["json"]
    assert update["userids"] == ["weixiu_laozhou", "weixiu_xiaoli"] and update["response_code"] == "RC-from-callback"
    assert by_path["/cgi-bin/appchat/send"][0]["json"]["text"]["content"] == "今日值班：老周"
    task_text = msgs[4]["json"]["text"]["content"]
    assert "明早9点停水" in task_text and "/sidebar?group=wrvip01" in task_text and "VIP业主群" in task_text

    # A callback card's response_code is kept with the row for a later update.
    assert row(ids[5]).payload["_result"]["response_code"].startswith("fake-rc-")
    assert all(r.state == "sent" and r.attempts == 1 and r.sent_at for r in rows())


def test_sent_row_is_not_sent_again_even_concurrently(outbound_env, fake_platform):
    from bot.outbound.sender import send_one

    oid = add_push(wecom_text("kefu_ajie"))
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(send_one(oid))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count("sent") == 1
    assert send_one(oid) == "already sent"
    assert len(fake_platform.sent(SEND)) == 1


def test_rate_limit_answer_is_retried_with_backoff(outbound_env, fake_platform, frozen_clock):
    """45009 -> failed with a back-off; not sent again before it; sent after, through the sweeper."""
    from bot.outbound.sender import send_one
    from bot.sweeper import sweep
    from tests.platform import drain_queues

    fake_platform.fault(SEND, errcode=45009, times=1)
    oid = add_push(wecom_text("kefu_xiaomei", "提醒"))
    assert send_one(oid) == "retry"
    r = row(oid)
    assert r.state == "failed" and r.attempts == 1 and "45009" in r.last_error
    assert r.next_attempt_at > frozen_clock.now()
    assert send_one(oid) == "not due"  # the back-off holds
    frozen_clock.advance(seconds=30)  # the sweeper takes rows 10 s past due
    assert sweep()["outbox"] == 1
    drain_queues(["outbound"])
    r = row(oid)
    assert r.state == "sent" and r.attempts == 2 and r.last_error is None
    assert len(fake_platform.delivered(SEND)) == 1


def test_server_error_and_timeout_are_retried(outbound_env, fake_platform):
    from bot.outbound.sender import send_one

    fake_platform.fault(SEND, status=500)
    oid = add_push(wecom_text("kefu_xiaomei", "五百"))
    assert send_one(oid) == "retry"
    assert "http_500" in row(oid).last_error

    fake_platform.fault(SEND, delay_s=6)
    time.sleep(0.25)  # back-off (0.2 s base in tests)
    started = time.monotonic()
    assert send_one(oid) == "retry"
    assert time.monotonic() - started < 3  # the 1 s client time-out, not the platform's 6 s
    r = row(oid)
    assert "timeout" in r.last_error and r.attempts == 2

    time.sleep(0.5)
    assert send_one(oid) == "sent"
    delivered = fake_platform.delivered(SEND)
    assert [e["json"]["text"]["content"] for e in delivered] == ["五百"]
    # Duplicate check is on: if the timed-out first try lands late, WeCom drops it.
    assert delivered[0]["json"]["enable_duplicate_check"] == 1


def test_gives_up_after_max_attempts_and_reports(outbound_env, fake_platform, demo, monkeypatch):
    from ground.config import reset_settings
    from bot.outbound.sender import send_one

    monkeypatch.setenv("GUANJIA_OUTBOX_MAX_ATTEMPTS", "2")
    reset_settings()
    fake_platform.fault(CUSTOM, status=502, times=5)
    oid = add_push(mp_text("o_wang", source="ticket:7"))
    assert send_one(oid) == "retry"
    time.sleep(0.25)
    assert send_one(oid) == "dead"
    r = row(oid)
    assert r.state == "dead" and r.attempts == 2 and "gave up after 2 attempts" in r.last_error
    reports = rows(source="outbox-report")
    assert len(reports) == 1 and reports[0].recipient == "zhuguan_chen|jingli_lin"


def test_outside_48h_window_is_dead_and_reported_once(outbound_env, fake_platform, demo):
    from bot.outbound.sender import send_one
    from tests.platform import drain_queues

    fake_platform.config(closed_window=["o_zhao"])
    first = add_push(mp_text("o_zhao", "您的快递到了", source="campaign:1"))
    second = add_push(mp_text("o_zhao", "第二条", source="campaign:1"))
    assert send_one(first) == "dead"
    assert send_one(second) == "dead"
    r = row(first)
    assert r.state == "dead" and r.attempts == 1 and r.last_error.startswith("45015")
    assert len(fake_platform.sent(CUSTOM)) == 0

    reports = rows(source="outbox-report")
    assert len(reports) == 1  # deduplicated per error, producer and hour
    drain_queues(["outbound"])
    report = fake_platform.sent(SEND)
    assert len(report) == 1
    assert report[0]["json"]["touser"] == "zhuguan_chen|jingli_lin"
    assert "o_zhao" in report[0]["json"]["text"]["content"] and "45015" in report[0]["json"]["text"]["content"]


def test_unknown_user_is_permanent(outbound_env, fake_platform, demo):
    from bot.outbound.sender import send_one

    mp = add_push(mp_text("unknown_openid"))
    wc = add_push(wecom_text("unknown_staff"))
    assert send_one(mp) == "dead" and row(mp).last_error.startswith("40003")
    assert send_one(wc) == "dead" and row(wc).last_error.startswith("81013")
    # A partly unknown recipient list is sent, and the miss is kept.
    part = add_push(wecom_text("kefu_ajie|unknown_x"))
    assert send_one(part) == "sent" and row(part).last_error == "invaliduser: unknown_x"


def test_bad_payload_and_unconfigured_channel_are_dead(outbound_env, fake_platform, monkeypatch):
    from ground.config import reset_settings
    from bot.outbound.sender import send_one

    bad = add_push(Push("wecom", "kefu_ajie", "textcard", {"title": "缺描述"}))
    assert send_one(bad) == "dead" and "description" in row(bad).last_error

    monkeypatch.delenv("WECHAT_SECRET")
    reset_settings()
    oid = add_push(mp_text("o_li"))
    assert send_one(oid) == "dead" and row(oid).last_error.startswith("not configured")
    assert fake_platform.sent() == []


def test_future_row_is_not_sent_early(outbound_env, fake_platform, frozen_clock):
    from bot.outbound import outbox
    from bot.outbound.sender import send_due, send_one
    from store.db import session_scope

    with session_scope() as s:
        oid = outbox.add(s, wecom_text("kefu_ajie"), now=frozen_clock.now() + timedelta(minutes=5)).id
    assert send_one(oid) == "not due"
    frozen_clock.advance(minutes=6)
    assert send_due() == {"sent": 1}


def test_overlong_wecom_text_is_cut_not_lost(outbound_env, fake_platform):
    from bot.outbound.sender import send_one

    oid = add_push(wecom_text("kefu_ajie", "长" * 1500))  # 4,500 bytes; WeCom takes 2,048
    assert send_one(oid) == "sent"
    content = fake_platform.sent(SEND)[0]["json"]["text"]["content"]
    assert len(content.encode()) <= 2048 and content.endswith("…")
    card = add_push(Push("wecom", "kefu_ajie", "textcard", {"title": "标题" * 50, "description": "描述" * 200,
                                                           "url": "https://example.invalid/x"}))
    assert send_one(card) == "sent"
    sent = fake_platform.sent(SEND)[1]["json"]["textcard"]
    assert len(sent["title"].encode()) <= 128 and len(sent["description"].encode()) <= 512
