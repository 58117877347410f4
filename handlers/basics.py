"""Always-there behaviour: welcome on follow, asking for a person."""
from __future__ import annotations

from handlers import registry
from handlers.message import Context, Message, Outcome

WELCOME = ("欢迎关注！我是小区管家，24小时在线。报修、投诉、预约会员服务、查询会员权益都可以直接发消息给我，"
           "回复「帮助」查看更多。")


@registry.event_handler("subscribe")
def on_subscribe(ctx: Context, msg: Message, _route) -> Outcome:
    return Outcome(replies=[WELCOME], intent="smalltalk")


@registry.text_command("handoff", r"^(人工|转人工|人工客服|找客服)$", intent="handoff",
                       chats=("private",), why="asked for a person")
def ask_for_person(ctx: Context, msg: Message, _route) -> Outcome:
    from handlers.understanding import consult_person

    return Outcome(replies=["好的，已为您转接人工客服，工作人员会在10分钟内回复您。"],
                   pushes=consult_person(ctx, msg), intent="handoff")
