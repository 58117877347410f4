"""Slash commands (roles, bad arguments, audit, app chat naming the group) and
the group registry / admission driven by change_external_chat."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

VIP = "wr_vip_01"


@pytest.fixture
def run(demo, frozen_clock):
    from handlers.dispatch import handle
    from handlers.message import Context, Message
    from store.db import session_scope

    n = {"i": 0}

    def say(sender: str, text: str, chat: str = "vip", group: str | None = VIP, channel: str = "archive"):
        n["i"] += 1
        with session_scope() as s:
            msg = Message(channel=channel, sender=sender, chat=chat, text=text, msg_id=f"c{n['i']}",
                          group_id=group if chat != "staff" else None)
            return handle(Context(s, frozen_clock.now()), msg)

    return say


def _texts(out) -> list[str]:
    return out.replies + [p.payload.get("content") or p.payload.get("text") for p in out.pushes
                          if p.kind in ("text", "group_task")]


def test_staff_admin_warns_in_group_and_gets_the_text_privately(run):
    from store.db import session_scope
    from store.models import AuditLog
    from store.models.groups import ModerationCase

    out = run("kefu_xiaomei", "/警告 @张伟 发广告")
    assert out.replies == []
    [p] = out.pushes
    assert p.kind == "text" and p.recipient == "kefu_xiaomei"
    assert "@张伟" in p.payload["content"] and "请在群内发送" in p.payload["content"]
    with session_scope() as s:
        case = s.scalars(select(ModerationCase)).one()
        assert (case.step, case.source, case.actor, case.member_id) == ("warn", "command", "kefu_xiaomei", "wm_zhang")
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "command.warn")).one()
        assert audit.detail["result"] == "ok" and audit.detail["role"] == "staff_admin"


def test_owner_admin_mutes_and_staff_admin_gets_a_card(run):
    out = run("wm_wang", "/禁言 @张伟 2小时 刷屏")  # wm_wang is an owner admin of the VIP group
    cards = [p for p in out.pushes if p.kind == "template_card"]
    assert cards and cards[0].recipient == "kefu_xiaomei"
    assert cards[0].payload["card"]["main_title"]["title"].startswith("禁言")
    # the confirmation for the owner admin can only reach the group through the staff admin
    tasks = [p for p in out.pushes if p.kind == "group_task"]
    assert tasks and "已记录禁言" in tasks[0].payload["text"]
    out = run("kefu_xiaomei", "/解禁 @张伟")
    assert "已解除" in _texts(out)[0]
    out = run("kefu_xiaomei", "/解禁 @张伟")
    assert "没有被禁言" in _texts(out)[0]


@pytest.mark.parametrize("sender,text,expect", [
    ("wm_li", "/移除 @张伟 捣乱", "仅限"),  # a plain owner
    ("wm_wang", "/移除 @张伟 捣乱", "仅限"),  # owner admins may not remove
    ("kefu_xiaomei", "/禁言 @张伟 很久", "时长"),
    ("kefu_xiaomei", "/禁言 张伟 1天", "用法"),
    ("kefu_xiaomei", "/警告 @不存在的人 发广告", "没有找到"),
    ("kefu_xiaomei", "/统计 去年", "用法"),
    ("kefu_xiaomei", "/工单 T99999", "没有找到"),
    ("kefu_xiaomei", "/不存在", "未知指令"),
    ("wm_li", "/help", "可用指令"),
])
def test_wrong_role_bad_args_unknown(run, sender, text, expect):
    from store.db import session_scope
    from store.models import AuditLog

    got = _texts(run(sender, text))
    assert got and expect in got[0], got
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action.like("command.%"))) == 1


def test_commands_from_the_app_chat_name_the_group(run):
    out = run("kefu_xiaomei", "/统计 VIP群 本周", chat="staff", channel="wecom")
    assert "尊享业主VIP群" in out.replies[0] and "成员：6人" in out.replies[0]
    out = run("kefu_xiaomei", "/统计 本周", chat="staff", channel="wecom")  # she runs two groups
    assert "请指明群" in out.replies[0]
    out = run("kefu_ajie", "/统计 本周", chat="staff", channel="wecom")  # he runs one
    assert "2栋业主群" in out.replies[0]
    out = run("kefu_xiaomei", "/警告 VIP群 @张伟 发广告", chat="staff", channel="wecom")
    assert "已记录警告" in out.replies[0]


def test_notice_creates_an_announcement(run):
    out = run("kefu_xiaomei", "/公告 周六上午电梯保养，请提前安排出行 明天9:00 1栋", chat="staff", channel="wecom")
    assert "公告已创建" in out.replies[0] and "1栋" in out.replies[0], out.replies


def test_only_the_admins_urgent_flag_makes_a_notice_an_emergency(run):
    from sqlalchemy import select

    from store.db import session_scope
    from store.models.campaigns import Campaign

    plain = run("kefu_xiaomei", "/公告 明天停水检修 1栋", chat="staff", channel="wecom")
    urgent = run("kefu_xiaomei", "/公告 紧急 3号楼水管爆裂，现正停水抢修 1栋", chat="staff", channel="wecom")
    assert plain.replies[0].startswith("公告已创建") and urgent.replies[0].startswith("紧急公告已创建")
    with session_scope() as s:
        flags = [c.emergency for c in s.scalars(select(Campaign).order_by(Campaign.id))]
    assert flags == [False, True]  # 停水 alone is no emergency; the 紧急 flag is


# --- registry and admission ---------------------------------------------------------------------

class Directory:
    def __init__(self, members: dict[str, list[dict]]):
        self.members = members

    def get(self, chat_id: str):
        if chat_id not in self.members:
            return None
        return {"name": {"wr_vip_01": "尊享业主VIP群"}.get(chat_id, "新群"), "owner": "kefu_xiaomei",
                "member_list": self.members[chat_id], "admin_list": [{"userid": "wm_wang"}]}


def _ext(*ids):
    return [{"userid": i, "type": 2} for i in ids]


def test_change_external_chat_syncs_and_checks_admission(run):
    from ground import ports
    from store.db import session_scope
    from store.models import GroupMember
    from store.models.groups import GroupAdmission

    base = ["wm_wang", "wm_li", "wm_zhang", "wm_zhao", "wm_huang", "wm_xu"]
    directory = Directory({VIP: _ext(*base, "wm_liu", "wm_stranger") + [{"userid": "kefu_xiaomei", "type": 1}]})
    ports.install(group_directory=directory)  # a fake platform view; the env fixture restores the ports
    from handlers.dispatch import handle
    from handlers.message import Context, Message
    from ground import clock

    def event(detail: str):
        with session_scope() as s:
            return handle(Context(s, clock.now()), Message(
                channel="wecom", sender="sys", chat="staff", kind="event", event="change_external_chat",
                data={"ChatId": VIP, "ChangeType": "update", "UpdateDetail": detail, "JoinScene": "1",
                      "MemChangeCnt": "2"}, group_id=VIP))

    out = event("add_member")
    cards = [p.payload["card"] for p in out.pushes if p.kind == "template_card"]
    assert len(cards) == 2 and all(p.recipient == "kefu_xiaomei" for p in out.pushes)
    reasons = {c["main_title"]["title"]: c["sub_title_text"] for c in cards}
    assert "会员等级为普通" in reasons["入群核验未通过：刘芳"]
    assert "未匹配到业主档案" in reasons["入群核验未通过：wm_stranger"]
    with session_scope() as s:
        adm = s.scalars(select(GroupAdmission).where(GroupAdmission.member_id == "wm_liu")).one()
        assert adm.decision == "pending"
        adm_id = adm.id

    # the staff admin admits her anyway
    with session_scope() as s:
        handle(Context(s, clock.now()), Message(channel="wecom", sender="kefu_xiaomei", chat="staff",
                                                kind="event", event="template_card_event",
                                                data={"EventKey": f"mod:admit:{adm_id}", "TaskId": f"adm-{adm_id}",
                                                      "ResponseCode": "rc1"}))
    # the stranger leaves; the event does not say who, the directory does
    directory.members[VIP] = [m for m in directory.members[VIP] if m["userid"] != "wm_stranger"]
    event("del_member")
    with session_scope() as s:
        states = {m.member_id: m.state for m in s.scalars(select(GroupMember).where(GroupMember.group_id == 1))}
        assert states["wm_liu"] == "active" and states["wm_stranger"] == "left"
        assert s.scalars(select(GroupMember).where(GroupMember.member_id == "kefu_xiaomei")).one().role == "staff"
        assert s.get(GroupAdmission, adm_id).decision == "admitted_by_staff"


def test_fee_arrears_and_building_rules(run):
    from handlers.groups.membership import check_admission
    from store.db import session_scope
    from store.models import Group
    from ground import clock

    with session_scope() as s:
        vip = s.scalar(select(Group).where(Group.chat_id == VIP))
        bld1 = s.scalar(select(Group).where(Group.chat_id == "wr_bld_1"))
        now = clock.now().replace(year=2026, month=11, day=1)
        _, reasons = check_admission(s, vip, "wm_zhang", now)  # 银卡, fees paid until 2026-09-30
        assert reasons == ["物业费仅缴至2026-09-30，已逾期"]
        _, reasons = check_admission(s, bld1, "wm_sun", now)  # lives in 2栋
        assert reasons == ["房屋不在本楼栋"]
        assert check_admission(s, vip, "wm_wang", now)[1] == []


def test_apply_verify_invite(run):
    from store.db import session_scope
    from store.models import GroupMember, Owner

    out = run("o_chen", "申请加入VIP群", chat="private", group=None, channel="mp")  # 普通 tier
    assert "暂时无法加入" in out.replies[0] and "银卡/金卡" in out.replies[0]
    out = run("o_zhang", "申请加入VIP群", chat="private", group=None, channel="mp")
    assert "已经在" in out.replies[0]
    with session_scope() as s:
        s.scalar(select(Owner).where(Owner.openid == "o_chen")).tier = "金卡"
    out = run("o_chen", "申请入群", chat="private", group=None, channel="mp")
    assert "已通过核验" in out.replies[0] and "VIP" in out.replies[0]
    [invite] = out.pushes
    assert invite.recipient == "kefu_xiaomei" and "陈明" in invite.payload["content"]
    assert "13800000005" not in invite.payload["content"]
    out = run("o_unknown", "申请入群", chat="private", group=None, channel="mp")
    assert "暂未核验到您的业主身份" in out.replies[0]


def test_group_complaint_becomes_the_writers_ticket_and_a_suggestion(run):
    from store.db import session_scope
    from store.models import Owner
    from store.models.groups import GroupSuggestion
    from store.models.tickets import Ticket

    out = run("wm_li", "楼道的灯坏了一个月了，一直没人修")
    assert out.replies == []  # nobody can post into the group but the staff admin
    [task] = [p for p in out.pushes if p.kind == "group_task"]
    assert task.recipient == "kefu_xiaomei" and "工单T" in task.payload["text"]
    with session_scope() as s:
        ticket = s.scalars(select(Ticket)).one()
        assert ticket.owner_id == s.scalar(select(Owner.id).where(Owner.external_userid == "wm_li"))
        sugg = s.scalars(select(GroupSuggestion)).one()
        assert sugg.reply_to == "wm_li" and f"T{ticket.id}" in sugg.text
    # group chatter produces nothing for the staff admin
    assert run("wm_li", "大家周末好呀").pushes == []


def test_an_owners_refused_command_is_answered_privately_not_posted(run):
    """Staff should not be asked to post an owner's refusal to the whole group."""
    out = run("wm_li", "/移除 @张伟 捣乱")
    assert not [p for p in out.pushes if p.kind == "group_task"]
    private = [p for p in out.pushes if p.channel == "mp"]
    assert private and private[0].recipient == "o_li" and "仅限" in private[0].payload["content"]
