"""Campaigns and announcements against the fake platform: channel planning,
quiet hours and the :00/:30 marks, emergencies, cancellation, the monthly
bulk-send cap per group, the survey answered in the chat."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from ground.clock import CST


def _run(cid: int) -> dict:
    from bot.campaigns import run_chunk

    return run_chunk(cid, max_seconds=20)


def _announce(text, target, at=None, emergency=None):
    from bot.campaigns import create_announcement
    from store.db import session_scope

    with session_scope() as s:
        return create_announcement(s, text, target, at=at, emergency=emergency, created_by="kefu_xiaomei").id


def test_channel_planning_per_recipient(demo, outbound_env, fake_platform, frozen_clock):
    from store.db import session_scope
    from store.models import Delivery, Owner

    frozen_clock.set(datetime(2026, 9, 15, 10, 10, tzinfo=CST))
    with session_scope() as s:  # 王建国 wrote an hour ago: inside the 48 h window
        s.scalar(select(Owner).where(Owner.openid == "o_wang")).last_inbound_at = frozen_clock.now() - timedelta(hours=1)
        s.scalar(select(Owner).where(Owner.openid == "o_li")).last_inbound_at = frozen_clock.now() - timedelta(hours=50)
    cid = _announce("本周六上午9点小区举办亲子活动，欢迎参加。",
                    {"buildings": ["1栋"], "staff": ["weixiu_laozhou"], "groups": ["wr_bld_2"]})
    res = _run(cid)
    assert res["state"] == "done", res
    with session_scope() as s:
        plan = {d.recipient_key: (d.channel, d.kind, d.address, d.state) for d in
                s.scalars(select(Delivery).where(Delivery.campaign_id == cid))}
    assert plan["owner:1"] == ("mp", "text", "o_wang", "sent")  # customer-service message in the window
    assert plan["owner:2"] == ("mp", "template", "o_li", "sent")  # outside it: template
    assert plan["staff:weixiu_laozhou"] == ("wecom", "text", "weixiu_laozhou", "sent")
    # Into the group: WeCom's company bulk send, for the group's staff owner to confirm.
    assert plan["group:wr_bld_2"] == ("wecom", "group_msg", "kefu_ajie", "confirming")
    assert len([k for k in plan if k.startswith("owner:")]) == 6  # 1栋 has six owners
    assert len(fake_platform.sent("/cgi-bin/message/custom/send")) == 1
    assert len(fake_platform.sent("/cgi-bin/message/template/send")) == 5
    wecom = fake_platform.sent("/cgi-bin/message/send")
    assert sorted(e["json"]["touser"] for e in wecom) == ["weixiu_laozhou"]
    bulk = fake_platform.sent("/cgi-bin/externalcontact/add_msg_template")
    assert [(e["json"]["chat_type"], e["json"]["sender"], e["json"]["chat_id_list"]) for e in bulk] == [
        ("group", "kefu_ajie", ["wr_bld_2"])]
    # Nothing twice: running the finished campaign again sends nothing.
    assert _run(cid)["state"] == "done"
    assert len(fake_platform.sent()) == len([e for e in fake_platform.sent()])
    assert len(fake_platform.sent("/cgi-bin/message/template/send")) == 5


def test_quiet_hours_marks_and_emergencies(demo, outbound_env, fake_platform, frozen_clock):
    from bot.campaigns import campaign_status, due_campaigns
    from store.db import session_scope

    frozen_clock.set(datetime(2026, 9, 15, 22, 0, tzinfo=CST))
    normal = _announce("下周一起垃圾分类新规实施。", {"tiers": ["金卡"]})
    urgent = _announce("紧急通知：今晚23点至次日6点1栋停水检修。", {"buildings": ["1栋"]}, emergency=True)
    with session_scope() as s:
        assert campaign_status(s, urgent)["emergency"] is True  # the manager ticked 紧急
        assert due_campaigns(s, frozen_clock.now()) == [urgent]
    assert _run(normal)["state"] == "paused"  # quiet hours
    assert _run(urgent)["state"] == "done"
    assert len(fake_platform.sent()) == 6
    # 08:00 sharp is on a :00 mark: still held; 08:03 goes.
    frozen_clock.set(datetime(2026, 9, 16, 8, 0, 30, tzinfo=CST))
    assert _run(normal)["state"] == "paused"
    frozen_clock.set(datetime(2026, 9, 16, 8, 29, 0, tzinfo=CST))
    assert _run(normal)["state"] == "paused"
    frozen_clock.set(datetime(2026, 9, 16, 8, 3, 0, tzinfo=CST))
    assert _run(normal)["state"] == "done"
    assert len(fake_platform.sent()) == 8  # 王建国 and 赵丽 (金卡)


def test_scheduled_announcement_can_be_cancelled_until_sent(demo, outbound_env, fake_platform, frozen_clock):
    from bot.campaigns import CampaignError, cancel_announcement
    from store.db import session_scope
    from store.models import AuditLog

    frozen_clock.set(datetime(2026, 9, 15, 10, 10, tzinfo=CST))
    cid = _announce("周五下午电梯年检。", {"everyone": True}, at=datetime(2026, 9, 18, 14, 10, tzinfo=CST))
    assert _run(cid)["state"] == "waiting"
    with session_scope() as s:
        assert cancel_announcement(s, cid, "jingli_lin")["cancelled"] is True
    frozen_clock.set(datetime(2026, 9, 18, 14, 10, tzinfo=CST))
    assert _run(cid)["state"] == "cancelled"
    assert fake_platform.sent() == []
    # Once sent it cannot be cancelled.
    done = _announce("通知：明天上午维修。", {"owners": [1]})
    _run(done)
    with session_scope() as s:
        res = cancel_announcement(s, done, "jingli_lin")
        assert res == {"cancelled": False, "state": "done", "sent": 1, "withdrawn": 0}
        assert [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))] == [
            "announcement.create", "announcement.cancel", "announcement.create"]
        with pytest.raises(CampaignError):
            cancel_announcement(s, 9999)
    with pytest.raises(CampaignError):
        _announce("   ", {"everyone": True})
    with pytest.raises(CampaignError):
        _announce("x", {"floors": [3]})


def test_group_bulk_send_cap_per_month(demo, outbound_env, fake_platform, frozen_clock):
    from store.db import session_scope
    from store.models import Campaign, Delivery, Group, GroupBulkSend

    frozen_clock.set(datetime(2026, 9, 15, 10, 10, tzinfo=CST))
    with session_scope() as s:  # September has 30 days: 29 used already
        g = s.scalar(select(Group).where(Group.chat_id == "wr_vip_01"))
        for i in range(29):
            c = Campaign(kind="announcement", title="t", text="t", target={}, send_at=frozen_clock.now(),
                         state="done", created_by="x")
            s.add(c)
            s.flush()
            s.add(GroupBulkSend(group_id=g.id, month="2026-09", campaign_id=c.id))
    first = _announce("VIP 群活动通知一", {"groups": ["wr_vip_01"]})
    second = _announce("VIP 群活动通知二", {"groups": ["wr_vip_01"]})
    _run(first), _run(second)
    with session_scope() as s:
        states = [(d.campaign_id, d.state, d.error) for d in s.scalars(select(Delivery).order_by(Delivery.id))]
    assert states == [(first, "confirming", None), (second, "skipped", "monthly bulk-send cap 30 reached")]
    frozen_clock.set(datetime(2026, 10, 1, 10, 10, tzinfo=CST))  # a new month, a new allowance
    third = _announce("VIP 群活动通知三", {"groups": ["wr_vip_01"]})
    assert _run(third)["deliveries"] == {"confirming": 1}


def test_survey_answers_in_chat_aggregated(demo, frozen_clock):
    from handlers.dispatch import handle
    from handlers.message import Context, Message
    from handlers import owner_survey as sv
    from store.db import session_scope
    from tests.obligations import fire_at

    assert fire_at(frozen_clock, datetime(2026, 9, 20, 10, 20, tzinfo=CST), "survey")["opened"] == 12

    def say(openid, text):
        with session_scope() as s:
            return handle(Context(s, frozen_clock.now()), Message(channel="mp", sender=openid, text=text))

    assert say("o_wang", "5 服务很好").replies == ["感谢您的评价（5分），我们会认真改进。"]
    low = say("o_zhao", "2分，电梯太慢")
    assert low.intent == "survey" and [(p.recipient, p.payload["content"][:13]) for p in low.pushes] == [
        ("kefu_ajie", "【满意度低分跟进 O17】")]  # 赵丽 lives in 2栋
    assert say("o_liu", "4").intent == "survey"
    assert say("o_li", "7").replies[0].startswith("请回复1到5")  # out of scale: asked again
    assert say("o_li", "3号楼电梯坏了").intent != "survey"  # a message, not a score
    assert say("o_wang", "5").intent != "survey"  # answered: the exchange is closed
    with session_scope() as s:
        rep = sv.report(s, "2026Q3")
    assert rep["answers"] == 3 and rep["average"] == 3.67
    assert rep["by_building"] == {"1栋": {"answers": 2, "average": 4.5, "low": 0},
                                  "2栋": {"answers": 1, "average": 2.0, "low": 1}}
    assert rep["by_tier"]["金卡"] == {"answers": 2, "average": 3.5, "low": 1}


def test_monthly_bill_is_personal_and_announcements_start_on_commit(demo, outbound_env, fake_platform, frozen_clock):
    from bot.queues import get_queue
    from bot.campaigns import run_chunk
    from tests.obligations import fire_at

    cid = fire_at(frozen_clock, datetime(2026, 10, 1, 9, 17, tzinfo=CST), "bills")["campaign"]
    assert run_chunk(cid, max_seconds=20)["state"] == "done"
    sent = {e["json"]["touser"]: e["json"]["data"]["remark"]["value"]
            for e in fake_platform.sent("/cgi-bin/message/template/send")}
    assert len(sent) == 12
    assert sent["o_zhang"] == "张伟您好：2026年10月物业服务费账单已生成（1-1502）。目前缴费至2026-09-30。如有疑问请回复本消息。"
    # An announcement due now is queued for the bulk workers as soon as it is committed.
    before = get_queue("bulk").count
    _announce("紧急通知：2栋今晚停电检修。", {"buildings": ["2栋"]})
    assert get_queue("bulk").count == before + 1


def test_window_closed_overnight_turns_text_into_template(demo, outbound_env, fake_platform, frozen_clock):
    from store.db import session_scope
    from store.models import Delivery, Owner

    frozen_clock.set(datetime(2026, 9, 15, 20, 50, tzinfo=CST))
    with session_scope() as s:  # 王建国 wrote 47 h ago: inside the window now, not tomorrow morning
        s.scalar(select(Owner).where(Owner.openid == "o_wang")).last_inbound_at = frozen_clock.now() - timedelta(hours=47)
    cid = _announce("明早8点起小区主干道绿化修剪，请注意绕行。", {"owners": [1]})
    from bot.campaigns import plan
    from store.models import Campaign
    with session_scope() as s:
        plan(s, s.get(Campaign, cid))
        assert s.scalar(select(Delivery.kind).where(Delivery.campaign_id == cid)) == "text"
    frozen_clock.set(datetime(2026, 9, 16, 8, 5, tzinfo=CST))  # after the quiet hours
    assert _run(cid)["deliveries"] == {"sent": 1}
    assert len(fake_platform.sent("/cgi-bin/message/template/send")) == 1
    assert fake_platform.sent("/cgi-bin/message/custom/send") == []


def test_a_word_suggests_urgency_but_only_the_tick_makes_an_emergency(demo, outbound_env, fake_platform,
                                                                     frozen_clock):
    """Issue 14: a planned 停水 notice not ticked 紧急 went to every owner at 01:59.
    Now it waits out the quiet hours and goes in the morning; ticked, it goes at once."""
    from bot.campaigns import campaign_status, due_campaigns, urgency_hint
    from store.db import session_scope

    text = "明天上午9点至12点1栋停水检修，请提前储水。"
    assert urgency_hint(text) == "停水"  # a hint for the console, nothing more
    frozen_clock.set(datetime(2026, 9, 15, 20, 30, tzinfo=CST))
    planned = _announce(text, {"buildings": ["1栋"]}, at=datetime(2026, 9, 16, 1, 59, tzinfo=CST))
    frozen_clock.set(datetime(2026, 9, 16, 1, 59, tzinfo=CST))
    with session_scope() as s:
        assert campaign_status(s, planned)["emergency"] is False
        assert due_campaigns(s, frozen_clock.now()) == []  # not in the quiet hours
    assert _run(planned)["state"] == "paused"
    frozen_clock.set(datetime(2026, 9, 16, 7, 59, tzinfo=CST))
    assert _run(planned)["state"] == "paused"
    assert fake_platform.sent() == []  # nothing reached an owner in the night
    frozen_clock.set(datetime(2026, 9, 16, 8, 5, tzinfo=CST))
    with session_scope() as s:
        assert due_campaigns(s, frozen_clock.now()) == [planned]
    assert _run(planned)["state"] == "done"
    assert len(fake_platform.sent()) == 6  # 1栋's six owners, in the morning
    # The manager ticks 紧急: at once, quiet hours or not.
    fake_platform.clear()
    frozen_clock.set(datetime(2026, 9, 16, 23, 40, tzinfo=CST))
    ticked = _announce("1栋水管爆裂，现紧急停水抢修。", {"buildings": ["1栋"]}, emergency=True)
    assert _run(ticked)["state"] == "done" and len(fake_platform.sent()) == 6


def test_failed_deliveries_say_why_and_can_be_retried(demo, outbound_env, fake_platform, frozen_clock):
    """Issue 14: "已完成 0/12 · 失败 12" with no reason. The platform's error is kept in
    words per delivery, the status groups them, and a retry sends the failed ones again."""
    from bot.campaigns import campaign_status, describe_error, retry_failed
    from store.db import session_scope
    from store.models import AuditLog, Delivery

    frozen_clock.set(datetime(2026, 9, 15, 10, 10, tzinfo=CST))
    # Two of 1栋's six owners unfollowed the Official Account (WeChat answers 43004).
    fake_platform.fault("/cgi-bin/message/template/send", errcode=43004, times=2)
    cid = _announce("本周六上午9点小区举办亲子活动，欢迎参加。", {"buildings": ["1栋"]})
    assert _run(cid)["state"] == "done"
    with session_scope() as s:
        st = campaign_status(s, cid)
        assert st["deliveries"] == {"sent": 4, "failed": 2}
        assert st["failures"] == {"业主已取消关注公众号": 2}
        assert {d.error for d in s.scalars(select(Delivery).where(Delivery.state == "failed"))} == {"业主已取消关注公众号"}
    assert describe_error("45015 response out of time limit (/cgi-bin/message/custom/send)").startswith("超过48小时")
    assert describe_error("99999 something new").startswith("发送失败")
    # They follow again; the manager retries: only the two failed ones go, once each.
    with session_scope() as s:
        assert retry_failed(s, cid, "jingli_lin") == 2
    assert _run(cid)["state"] == "done"
    with session_scope() as s:
        st = campaign_status(s, cid)
        assert st["deliveries"] == {"sent": 6} and st["failures"] == {}
        assert s.scalar(select(AuditLog).where(AuditLog.action == "announcement.retry")).actor == "jingli_lin"
    sent = fake_platform.sent("/cgi-bin/message/template/send")
    assert len(sent) == 6 and len({e["json"]["touser"] for e in sent}) == 6  # nobody twice
    with session_scope() as s:
        assert retry_failed(s, cid) == 0  # nothing left to retry


def test_audience_and_count_before_sending(demo):
    from bot.campaigns import CampaignError, audience
    from store.db import session_scope
    from store.models import Owner
    from sqlalchemy import func

    with session_scope() as s:
        everyone = s.scalar(select(func.count()).select_from(Owner))
        assert audience(s, {"everyone": True}) == {"label": "全体业主", "owners": everyone, "staff": 0, "groups": 0,
                                                   "count": everyone}
        one = audience(s, {"buildings": ["1栋"]})
        assert one["label"] == "1栋" and one["count"] == 6 < everyone
        with pytest.raises(CampaignError):
            audience(s, {"floors": [3]})


def test_group_notice_is_a_bulk_send_the_owner_confirms_tracked_until_sent(demo, outbound_env, fake_platform,
                                                                            frozen_clock):
    """Issue 14: into owners' groups through WeCom's company bulk send (chat_type group,
    sender = the group's staff owner), tracked with get_groupmsg_send_result, counted
    against the per-group monthly limit; the ready-to-send task is the fall-back."""
    import requests

    from bot.campaigns import campaign_status, track_group_msgs
    from store.db import session_scope
    from store.models import Delivery, GroupBulkSend

    frozen_clock.set(datetime(2026, 9, 15, 10, 10, tzinfo=CST))
    cid = _announce("本周六上午9点中心广场中秋游园会，欢迎参加。", {"groups": ["wr_bld_2", "wr_vip_01"]})
    assert _run(cid)["state"] == "done"
    bulk = fake_platform.sent("/cgi-bin/externalcontact/add_msg_template")
    assert sorted((e["json"]["sender"], e["json"]["chat_id_list"][0]) for e in bulk) == [
        ("kefu_ajie", "wr_bld_2"), ("kefu_xiaomei", "wr_vip_01")]
    assert all(e["json"]["text"]["content"].startswith("本周六上午9点") for e in bulk)
    with session_scope() as s:
        assert track_group_msgs(s)["waiting"] == 2  # nobody has tapped 发送 yet
        assert s.scalar(select(func.count()).select_from(GroupBulkSend)) == 2  # counted per group
    # 阿杰 confirms in WeCom; 小美 does not (yet).
    requests.post(fake_platform.base_url + "/_groupmsg/confirm", json={"sender": "kefu_ajie"}, timeout=5)
    with session_scope() as s:
        assert track_group_msgs(s) == {"sent": 1, "failed": 0, "waiting": 1}
        assert campaign_status(s, cid)["deliveries"] == {"sent": 1, "confirming": 1}
    # Three days on, an unconfirmed one is failed, saying why.
    frozen_clock.advance(hours=73)
    with session_scope() as s:
        assert track_group_msgs(s)["failed"] == 1
        assert campaign_status(s, cid)["failures"] == {"群主未在企业微信中确认发送": 1}
    # The platform refuses a bulk send: the ready-to-send task goes to the staff owner instead.
    fake_platform.clear()
    frozen_clock.set(datetime(2026, 9, 16, 10, 10, tzinfo=CST))
    fake_platform.fault("/cgi-bin/externalcontact/add_msg_template", errcode=45009, times=1)
    fallback = _announce("周日停车场清洗，请挪车。", {"groups": ["wr_bld_2"]})
    assert _run(fallback)["state"] == "done"
    with session_scope() as s:
        d = s.scalar(select(Delivery).where(Delivery.campaign_id == fallback))
        assert (d.kind, d.state) == ("group_task", "sent") and "改为待发任务" in d.error
    task = fake_platform.sent("/cgi-bin/message/send")
    assert [e["json"]["touser"] for e in task] == ["kefu_ajie"]
    assert "2栋业主群" in task[0]["json"]["text"]["content"]
