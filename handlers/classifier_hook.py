"""The one place the router asks what a free-text message wants.

The understanding capability (FAQ matcher + intent classifier) installs its
classifier with `set_classifier`; the default knows greetings and help only.
"""
from __future__ import annotations

from typing import Callable

from handlers.route_result import RouteResult

Classifier = Callable[[str, str, str], RouteResult]

GREETINGS = ("你好", "您好", "hi", "hello", "在吗", "在么", "早上好", "晚上好", "下午好")
HELP = ("帮助", "help", "菜单", "你能做什么", "能做什么")

HELP_TEXT = (
    "您好，我是小区管家。您可以直接告诉我：\n"
    "· 报修或投诉，例如「厨房水管漏水」\n"
    "· 预约会员服务，例如「预约家政保洁」\n"
    "· 查询会员，例如「我的会员」\n"
    "· 咨询物业规定，例如「银卡有哪些权益」\n"
    "需要人工时回复「人工」。"
)


def _default(text: str, chat: str, role: str) -> RouteResult:
    low = text.lower()
    if any(low == h or low.startswith(h) for h in HELP):
        return RouteResult(intent="smalltalk", answer=HELP_TEXT, score=1.0, why="help words")
    if any(low.startswith(g) for g in GREETINGS) and len(text) <= 8:
        return RouteResult(intent="smalltalk", answer="您好！我是小区管家，有什么可以帮您？回复「帮助」看看我能做什么。",
                           score=1.0, why="greeting")
    return RouteResult(intent="handoff", answer="收到，已为您转给人工客服，稍后会有工作人员回复您。",
                       why="nothing matched: handed to a person")


_classifier: Classifier = _default


def set_classifier(fn: Classifier) -> None:
    global _classifier
    _classifier = fn


def classify(text: str, chat: str, role: str) -> RouteResult:
    return _classifier(text, chat, role)
