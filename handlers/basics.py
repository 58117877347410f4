"""Always-there behaviour: welcome on follow, asking for a person, the staff's help."""
from __future__ import annotations

from handlers.capability import Capability
from handlers.consultations.chat import hand_over
from handlers.message import Context, Message, Outcome

capability = Capability("basics")

WELCOME = ("欢迎关注！我是小区管家，24小时在线。报修、投诉、预约会员服务、查询会员权益都可以直接发消息给我，"
           "回复「帮助」查看更多。")

# What staff can type in the WeCom app (the owner's menu is no use to them).
STAFF_HELP = ("工作人员指令：\n"
              "【工单】接单 T12 · 出发 T12 · 到场 T12 · 进度 T12 说明 · 完成 T12 结果 · 转派 T12 姓名 · "
              "回访 T12 备注 · 接管 T12 · 我的工单 · 电话 T12（业主号码，查看会记录）\n"
              "【咨询】我的咨询 · 接手 C12 · 回复 C12 内容 · 关闭 C12\n"
              "【会员】查会员 房号 · 会员违规 房号 警告/暂停/降级 原因 · 特殊贡献 房号 银卡/金卡 原因\n"
              "卡片上的按钮与这些指令效果相同。")


@capability.event("subscribe")
def on_subscribe(ctx: Context, msg: Message, _route) -> Outcome:
    return Outcome(replies=[WELCOME], intent="smalltalk")


@capability.text_command("handoff", r"^(人工|转人工|人工客服|找客服|找人工)[。!！]*$", intent="handoff",
                         chats=("private",), why="asked for a person")
def ask_for_person(ctx: Context, msg: Message, _route) -> Outcome:
    return hand_over(ctx, msg)


@capability.text_command("staff_help", r"^(?:帮助|help|菜单|指令|命令|帮助菜单|你能做什么)[?？。!！]*$", intent="command",
                         chats=("staff",), roles=("staff", "admin"), why="staff get the staff commands")
def staff_help(ctx: Context, msg: Message, _route) -> Outcome:
    return Outcome(replies=[STAFF_HELP], intent="command")
