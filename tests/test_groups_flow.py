"""Group messages end to end: the archive across a restart (each message
handled exactly once), the sanctions ladder walked to removal with the cards
on the fake platform's /_sent, and the reversal of a wrong strike."""
from __future__ import annotations

from sqlalchemy import func, select

from tests.platform import drain_queues, wecom_event_request

VIP = "wr_vip_01"


def _cards(fake, to: str) -> list[dict]:
    return [c["json"]["template_card"] for c in fake.sent("/cgi-bin/message/send")
            if c["json"].get("msgtype") == "template_card" and c["json"].get("touser") == to]


def test_archive_restart_handles_each_message_once(outbound_env, demo, tmp_path):
    from handlers.groups import archive
    from handlers.groups.archive import FakeArchiveSource, poll_archive
    from store.db import session_scope
    from store.models import InboxMessage
    from store.models.groups import ArchiveCursor, GroupSuggestion, ModerationCase

    path = tmp_path / "archive.jsonl"
    src = FakeArchiveSource(path)
    src.add("wm_li", VIP, "游泳池几点开放")
    src.add("wm_zhang", VIP, "低价代购 加微信 abc888")
    src.add("wm_li", VIP, "[图片]", msgtype="image")  # not text: read, not handled
    src.add("wm_huang", "wr_unknown_room", "别的群的消息")  # not a customer group we know
    src.add("wm_zhao", VIP, "大家周末好呀")
    assert poll_archive(source=src) == 5

    # A crash after accepting but before the cursor moved: the cursor is behind.
    with session_scope() as s:
        s.get(ArchiveCursor, "fake").seq = 1
    archive.set_source(None)  # the restarted process knows nothing but the file and the database
    restarted = FakeArchiveSource(path)
    restarted.add("wm_xu", VIP, "请问物业费可以开发票吗")
    assert poll_archive(source=restarted) == 5  # seq 2..6 re-read
    assert poll_archive(source=restarted) == 0  # nothing new
    drain_queues()

    with session_scope() as s:
        rows = s.scalars(select(InboxMessage).where(InboxMessage.channel == "archive")).all()
        assert sorted(r.dedup_key for r in rows) == ["m:fake-1", "m:fake-2", "m:fake-5", "m:fake-6"]
        assert {r.state for r in rows} == {"done"}
        assert all(r.attempts == 1 for r in rows)
        assert s.get(ArchiveCursor, "fake").seq == 6
        # the ad produced one case, not two; the questions one suggestion each at most
        assert s.scalar(select(func.count()).select_from(ModerationCase)) == 1
        keys = [g.dedup_key for g in s.scalars(select(GroupSuggestion))]
        assert len(keys) == len(set(keys))
    assert len(_cards(outbound_env["fake"], "kefu_xiaomei")) == 1


def test_ladder_to_removal_and_reversal(outbound_env, demo, app_client, tmp_path):
    from handlers.groups.archive import FakeArchiveSource, poll_archive
    from store.db import session_scope
    from store.models import AuditLog, GroupMember
    from store.models.groups import ModerationCase

    fake = outbound_env["fake"]
    src = FakeArchiveSource()
    src.add("wm_zhang", VIP, "香港代购，需要的加我薇信 hk2026buy")  # 1 strike: warn
    poll_archive(source=src)
    drain_queues()
    src.add("wm_zhang", VIP, "你 是 猪 吗，这都不懂")  # 2 strikes: mute
    poll_archive(source=src)
    drain_queues()
    src.add("wm_zhang", VIP, "我就说，怎么了")  # ordinary, but he is muted: removal
    poll_archive(source=src)
    drain_queues()

    cards = _cards(fake, "kefu_xiaomei")
    assert [c["main_title"]["title"].split("：")[0] for c in cards] == ["警告", "禁言", "移出群聊"]
    for c in cards:
        assert c["card_type"] == "button_interaction"
        assert [b["key"].split(":")[1] for b in c["button_list"]] == ["done", "fp"]
        assert "hk2026buy" not in str(c)  # the WeChat id is masked in the evidence
    assert "hk****" in cards[0]["quote_area"]["quote_text"]
    assert "禁言至" in cards[1]["sub_title_text"]

    with session_scope() as s:
        cases = s.scalars(select(ModerationCase).order_by(ModerationCase.id)).all()
        assert [(c.violation, c.step, c.strike_total) for c in cases] == [
            ("ad", "warn", 1), ("insult", "mute", 2), ("muted_speech", "remove", 3)]
        ids = [c.id for c in cases]

    def click(key: str, task: str, code: str) -> None:
        q, body = wecom_event_request("kefu_xiaomei", "template_card_event",
                                      {"EventKey": key, "TaskId": task, "CardType": "button_interaction",
                                       "ResponseCode": code})
        assert app_client.post("/wecom/app", query_string=q, data=body).status_code == 200
        drain_queues()

    # The insult was a misreading: "not a violation" reverses it, and the removal is done.
    click(f"mod:fp:{ids[1]}", f"mod-{ids[1]}", "code-fp")
    click(f"mod:done:{ids[2]}", f"mod-{ids[2]}", "code-done")
    updates = fake.sent("/cgi-bin/message/update_template_card")
    assert [u["json"]["button"]["replace_name"] for u in updates] == ["已撤销（不算违规）", "已处理"]
    assert updates[0]["json"]["response_code"] == "code-fp"

    with session_scope() as s:
        fp = s.get(ModerationCase, ids[1])
        assert fp.status == "reversed" and fp.false_positive and fp.mute_until <= fp.decided_at
        assert s.get(ModerationCase, ids[2]).status == "done"
        member = s.scalar(select(GroupMember).where(GroupMember.member_id == "wm_zhang",
                                                    GroupMember.group_id == 1))
        assert member.state == "removed"
        actions = [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
        assert actions.count("moderation.reverse") == 1 and "moderation.done" in actions
        from handlers.groups.ladder import false_positive_rate

        assert false_positive_rate(s) == (1, 3)


def test_reversed_strike_no_longer_counts(env, demo, frozen_clock):
    from handlers.dispatch import handle
    from handlers.groups import ladder
    from handlers.message import Context, Message
    from store.db import session_scope

    def say(text: str, n: int):
        with session_scope() as s:
            return handle(Context(s, frozen_clock.now()), Message(channel="archive", sender="wm_li", chat="vip",
                                                                  text=text, msg_id=f"x{n}", group_id=VIP))

    out = say("代购奶粉，加V详聊", 1)
    assert out.replies == [] and out.pushes[0].kind == "template_card"
    with session_scope() as s:
        case = s.scalars(select(ladder.ModerationCase)).one()
        ladder.decide(s, frozen_clock.now(), case, "fp", "kefu_xiaomei")
    out = say("代购奶粉，加V详聊", 2)  # counted as a first offence again
    assert out.pushes[0].payload["card"]["main_title"]["title"].startswith("警告")
    frozen_clock.advance(days=100)  # strikes decay (ladder.yaml decay_days)
    out = say("代购奶粉，加V详聊", 3)
    assert out.pushes[0].payload["card"]["main_title"]["title"].startswith("警告")


def test_webhook_events_sync_members_and_fetch_the_archive(outbound_env, demo, app_client):
    """change_external_chat -> groupchat/get on the fake platform -> admission card;
    msgaudit_notify -> the archive is read at once."""
    from handlers.groups import archive
    from handlers.groups.archive import FakeArchiveSource
    from store.db import session_scope
    from store.models import GroupMember, InboxMessage

    fake = outbound_env["fake"]
    members = [{"userid": u, "type": 2} for u in ("wm_wang", "wm_li", "wm_zhang", "wm_zhao", "wm_huang", "wm_xu",
                                                   "wm_yang")]
    fake.config(customer_groups={VIP: {"name": "尊享业主VIP群", "owner": "kefu_xiaomei", "member_list": members,
                                       "admin_list": [{"userid": "wm_wang"}]}})
    q, body = wecom_event_request("sys", "change_external_chat", {
        "ChatId": VIP, "ChangeType": "update", "UpdateDetail": "add_member", "JoinScene": "1", "MemChangeCnt": "1"})
    assert app_client.post("/wecom/app", query_string=q, data=body).status_code == 200
    drain_queues()
    [card] = _cards(fake, "kefu_xiaomei")
    assert card["main_title"]["title"] == "入群核验未通过：杨洋"  # 普通 tier and fees only to 2026-08-31
    with session_scope() as s:
        row = s.scalar(select(GroupMember).where(GroupMember.member_id == "wm_yang", GroupMember.group_id == 1))
        assert row.state == "pending"

    src = FakeArchiveSource()
    src.add("wm_li", VIP, "大家周末好呀")
    archive.set_source(src)
    try:
        q, body = wecom_event_request("sys", "msgaudit_notify")
        assert app_client.post("/wecom/app", query_string=q, data=body).status_code == 200
        drain_queues()
    finally:
        archive.set_source(None)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(InboxMessage).where(InboxMessage.channel == "archive")) == 1


def test_staff_group_posts_and_removes_directly(outbound_env, demo):
    from ground import clock
    from handlers.dispatch import handle
    from handlers.groups import staff_groups
    from handlers.message import Context, Message
    from store.db import session_scope
    from store.models import GroupMember

    fake = outbound_env["fake"]
    with session_scope() as s:
        group = staff_groups.create_staff_group(s, clock.now(), "客服值班群", "zhuguan_chen",
                                                ["kefu_xiaomei", "kefu_ajie", "baoan_dawei"])
        chat_id = group.chat_id
    assert fake.sent("/cgi-bin/appchat/create")[0]["json"]["name"] == "客服值班群"

    def command(text: str):
        with session_scope() as s:
            out = handle(Context(s, clock.now()), Message(channel="wecom", sender="zhuguan_chen", chat="staff",
                                                          text=text, msg_id=f"sg-{text}"))
            from bot.outbound import outbox

            ids = [r.id for r in (outbox.add(s, p) for p in out.pushes) if r is not None]
        outbox.queue_send(ids)
        drain_queues()
        return out

    out = command("/警告 客服值班群 @大伟 交接班记录未填写")
    assert "已在「客服值班群」提醒" in out.replies[0]
    sent = fake.sent("/cgi-bin/appchat/send")
    assert sent[0]["json"]["chatid"] == chat_id and "@大伟 提醒" in sent[0]["json"]["text"]["content"]
    out = command("/移除 客服值班群 @大伟 调岗")
    assert "已将 大伟 移出" in out.replies[0]
    upd = fake.sent("/cgi-bin/appchat/update")
    assert upd[0]["json"]["del_user_list"] == ["baoan_dawei"]
    with session_scope() as s:
        assert s.scalar(select(GroupMember).where(GroupMember.member_id == "baoan_dawei")).state == "removed"


def test_personal_data_never_leaves_unmasked(env, demo, frozen_clock, caplog):
    """A privacy leak in a group: nothing the bot sends, logs or records for
    appeals carries the numbers (the inbox row keeps the original, inside)."""
    import json
    import logging

    from handlers.dispatch import handle
    from handlers.message import Context, Message
    from store.db import session_scope
    from store.models import AuditLog
    from store.models.groups import GroupSuggestion, ModerationCase

    caplog.set_level(logging.DEBUG)
    secrets = ["13700001111", "110105198001011238", "lisi2026"]
    with session_scope() as s:
        out = handle(Context(s, frozen_clock.now()), Message(
            channel="archive", sender="wm_li", chat="vip", msg_id="leak1", group_id=VIP,
            text="5栋302李四的电话13700001111，身份证110105198001011238，微信号 lisi2026"))
        assert out.route["violation"] == "privacy"
        leaving = json.dumps([p.payload for p in out.pushes] + out.replies + [out.route], ensure_ascii=False)
        kept = json.dumps([[c.evidence, c.why, c.warning_text] for c in s.scalars(select(ModerationCase))] +
                          [a.detail for a in s.scalars(select(AuditLog))] +
                          [g.question for g in s.scalars(select(GroupSuggestion))], ensure_ascii=False)
    for secret in secrets:
        assert secret not in leaving and secret not in kept and secret not in caplog.text, secret
    assert "137****1111" in leaving


def test_mute_is_time_bound(env, demo, frozen_clock):
    from handlers.dispatch import handle
    from handlers.message import Context, Message
    from store.db import session_scope

    def say(text: str, n: int):
        with session_scope() as s:
            return handle(Context(s, frozen_clock.now()), Message(channel="archive", sender="wm_huang", chat="vip",
                                                                  text=text, msg_id=f"tb{n}", group_id=VIP))

    out = say("出售假证 包过", 1)  # illegal weighs 2: straight to a mute (ladder.yaml)
    assert out.pushes[0].payload["card"]["main_title"]["title"].startswith("禁言")
    frozen_clock.advance(hours=2)
    assert say("那我不说了", 2).pushes[0].payload["card"]["main_title"]["title"].startswith("移出群聊")


def test_mute_expires(env, demo, frozen_clock):
    from handlers.dispatch import handle
    from handlers.message import Context, Message
    from store.db import session_scope

    def say(text: str, n: int):
        with session_scope() as s:
            return handle(Context(s, frozen_clock.now()), Message(channel="archive", sender="wm_huang", chat="vip",
                                                                  text=text, msg_id=f"te{n}", group_id=VIP))

    say("出售假证 包过", 1)
    frozen_clock.advance(hours=25)  # mute_minutes 1440
    assert say("大家好，我回来了", 2).pushes == []
