"""route(): what the bot would do with a text, with no side effects.

The order is the product's priorities: a rule-breaking group message is a
moderation matter first; a command a capability owns comes before guessing;
then the classifier (FAQ, complaint, booking, membership, small talk,
handoff).
"""
from __future__ import annotations

from handlers import classifier_hook, load_capabilities, moderation_hook, registry
from handlers.normalize import basic
from handlers.route_result import RouteResult

# Reliability (issue 13): only the first ROUTE_MAX_CHARS characters are routed, so
# no owner text (5,000 letters, a digit run, 100 KB pasted) can stall a worker;
# every step below is then bounded. A real message is far shorter; what lies
# beyond the cap is kept in the stored message, just not used to decide.
ROUTE_MAX_CHARS = 2000


def route(text: str, chat: str = "private", role: str = "owner") -> RouteResult:
    load_capabilities()
    text = basic((text or "")[:ROUTE_MAX_CHARS * 2])[:ROUTE_MAX_CHARS]  # cap before and after normalising
    violation, action, why_mod = moderation_hook.check(text, chat, role)

    found = registry.match_text_command(text, chat, role)
    if found:
        cmd, m = found
        result = RouteResult(intent=cmd.intent, score=1.0, why=f"command {cmd.name}: {cmd.why}",
                             handler=cmd.name, args={"match": m.groupdict() or list(m.groups())})
    elif violation != "none" and chat in ("vip", "building"):
        # A rule-breaking group message is a moderation matter only: it never opens
        # a ticket or gets an answer (which would repeat what it leaked).
        result = RouteResult(intent="smalltalk", score=1.0, why="group message breaks the rules: moderation only")
    else:
        result = classifier_hook.classify(text, chat, role)

    result.violation, result.action = violation, action
    if violation != "none":
        result.why = f"{why_mod}; {result.why}" if result.why else why_mod
    return result
