"""Understanding owners: the intent classifier installed into the router, and
the FAQ / handoff intent handlers that reply and record unanswered questions.

`classify()` is pure (the router's `route()` must have no side effects);
misses are written by the intent handlers, which run only when a message is
really handled.

Decisions, in order (each a lexicon in handlers/data/*.yaml):
slash command -> asking for a person -> small talk -> the owner's own
membership -> complaint/repair (unless it asks about the rules) -> booking
(unless it asks how booking works) -> FAQ -> clarify with the closest
topics -> handoff.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from handlers import classifier_hook, conversation, registry
from handlers.message import Context, Message, Outcome
from handlers.route_result import RouteResult

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent / "data"
INTENTS_FILE = DATA / "intents.yaml"
PRIORITY_FILE = DATA / "priority.yaml"

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_QUESTION = re.compile(r"[?？吗么呢]|怎么|怎样|如何|多久|多长|多少|什么|哪|几|是否|是不是|能不能|可不可以|有没有|会不会|啥|咋|谁")
_TRAILING = re.compile(r"[呀啊吧呢哦嘛啦哈~～!！。.,，]+$")
PRIORITIES = ("urgent", "important", "general")
CATEGORIES = ("repair", "sanitation", "security", "neighbour", "noise", "facility", "other")


class LexiconError(ValueError):
    """A lexicon file is wrong; the message names file, section and field."""


def _words(file: Path, section: str, value) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and str(v).strip() for v in value):
        raise LexiconError(f"{file.name}: {section}: must be a list of non-empty words")
    from faq.normalize import clean

    return tuple(dict.fromkeys(clean(str(v)) for v in value))


@dataclass
class Lexicons:
    command_prefixes: tuple[str, ...]
    handoff: tuple[str, ...]
    greetings: tuple[str, ...]
    thanks: tuple[str, ...]
    help: tuple[str, ...]
    chatter: tuple[str, ...]
    chitchat: tuple[str, ...]
    small_max: int
    membership: tuple[str, ...]
    c_request: tuple[str, ...]
    c_topic: tuple[str, ...]
    c_meta: tuple[str, ...]
    c_event: tuple[str, ...]
    b_verbs: tuple[str, ...]
    b_services: tuple[str, ...]
    b_meta: tuple[str, ...]
    b_strong: tuple[str, ...]
    answers: dict[str, str]
    priority: dict[str, tuple[str, ...]]
    priority_text: dict[str, str]
    category: dict[str, tuple[str, ...]]


def load_lexicons(intents_file: Path = INTENTS_FILE, priority_file: Path = PRIORITY_FILE) -> Lexicons:
    """Read and validate both lexicon files; errors name the file and section."""
    it = yaml.safe_load(intents_file.read_text(encoding="utf-8"))
    pr = yaml.safe_load(priority_file.read_text(encoding="utf-8"))
    f = intents_file

    def sec(data: dict, path: str, file: Path):
        cur = data
        for part in path.split("."):
            if not isinstance(cur, dict) or part not in cur:
                raise LexiconError(f"{file.name}: {path}: missing")
            cur = cur[part]
        return cur

    answers = sec(it, "answers", f)
    for key in ("complaint", "booking", "membership", "command", "clarify", "handoff", "help", "greeting", "thanks",
                "chitchat"):
        if not isinstance(answers.get(key), str):
            raise LexiconError(f"{f.name}: answers.{key}: missing or not text")
    prio, prio_text = {}, {}
    for p in PRIORITIES:
        prio[p] = _words(priority_file, f"priority.{p}.words", sec(pr, f"priority.{p}.words", priority_file))
        prio_text[p] = str(sec(pr, f"priority.{p}.text", priority_file))
    cats = sec(pr, "category", priority_file)
    for c in cats:
        if c not in CATEGORIES:
            raise LexiconError(f"{priority_file.name}: category.{c}: unknown category (use one of {', '.join(CATEGORIES)})")
    return Lexicons(
        command_prefixes=tuple(sec(it, "command_prefixes", f)),
        handoff=_words(f, "handoff", sec(it, "handoff", f)),
        greetings=_words(f, "smalltalk.greetings", sec(it, "smalltalk.greetings", f)),
        thanks=_words(f, "smalltalk.thanks", sec(it, "smalltalk.thanks", f)),
        help=_words(f, "smalltalk.help", sec(it, "smalltalk.help", f)),
        chatter=_words(f, "smalltalk.chatter", sec(it, "smalltalk.chatter", f)),
        chitchat=_words(f, "smalltalk.chitchat", sec(it, "smalltalk.chitchat", f)),
        small_max=int(sec(it, "smalltalk.max_len", f)),
        membership=_words(f, "membership.phrases", sec(it, "membership.phrases", f)),
        c_request=_words(f, "complaint.request_words", sec(it, "complaint.request_words", f)),
        c_topic=_words(f, "complaint.topic_words", sec(it, "complaint.topic_words", f)),
        c_meta=_words(f, "complaint.meta_words", sec(it, "complaint.meta_words", f)),
        c_event=_words(f, "complaint.event_markers", sec(it, "complaint.event_markers", f)),
        b_verbs=_words(f, "booking.verbs", sec(it, "booking.verbs", f)),
        b_services=_words(f, "booking.services", sec(it, "booking.services", f)),
        b_meta=_words(f, "booking.meta_words", sec(it, "booking.meta_words", f)),
        b_strong=_words(f, "booking.strong", sec(it, "booking.strong", f)),
        answers={k: str(v) for k, v in answers.items()},
        priority=prio, priority_text=prio_text,
        category={c: _words(priority_file, f"category.{c}", v) for c, v in cats.items()},
    )


_lex: Lexicons | None = None
_lex_mtimes: tuple[float, float] = (0.0, 0.0)
_lex_checked = 0.0


def lexicons() -> Lexicons:
    """The lexicons, reloaded when a manager edits a file (checked every few
    seconds); a broken edit keeps the last good version and is logged."""
    global _lex, _lex_mtimes, _lex_checked
    now = time.monotonic()
    if _lex is not None and now - _lex_checked < 2.0:
        return _lex
    _lex_checked = now
    mt = (INTENTS_FILE.stat().st_mtime, PRIORITY_FILE.stat().st_mtime)
    if _lex is None:
        _lex, _lex_mtimes = load_lexicons(), mt
    elif mt != _lex_mtimes:
        _lex_mtimes = mt
        try:
            _lex = load_lexicons()
            log.info("intent/priority lexicons reloaded")
        except (LexiconError, yaml.YAMLError, OSError) as exc:
            log.error("lexicons NOT reloaded: %s", exc)
    return _lex


def _hits(text: str, words: tuple[str, ...]) -> list[str]:
    return [w for w in words if w in text]


def classify_priority(text: str) -> tuple[str, str | None]:
    """(priority, deciding word): the first class in urgent -> important ->
    general with a word in the text; general when none (every request has a clock)."""
    from faq.normalize import clean

    c = clean(text)
    for p in PRIORITIES:
        hit = _hits(c, lexicons().priority[p])
        if hit:
            return p, max(hit, key=len)
    return "general", None


def classify_category(text: str) -> tuple[str, str | None]:
    """(category, deciding word): the category with the longest matching word
    (卫生间 is a room, not 卫生), ties broken by the order in priority.yaml."""
    from faq.normalize import clean

    c = clean(text)
    best: tuple[int, int, str, str] | None = None
    for order, (cat, words) in enumerate(lexicons().category.items()):
        hit = _hits(c, words)
        if hit:
            w = max(hit, key=len)
            if best is None or (len(w), -order) > (best[0], best[1]):
                best = (len(w), -order, cat, w)
    return (best[2], best[3]) if best else ("other", None)


def _core(c: str) -> str:
    return _PUNCT.sub("", c)


def _smalltalk(c: str, lx: Lexicons) -> str | None:
    """'greeting' / 'thanks' / 'help' when the whole message is small talk."""
    core = _TRAILING.sub("", _core(c))
    if not core:
        return "greeting"
    for kind, words in (("help", lx.help), ("thanks", lx.thanks), ("greeting", lx.greetings)):
        if core in words:
            return kind
    if len(core) <= lx.small_max:
        rest = core
        for w in sorted(set(lx.greetings + lx.thanks + lx.chatter), key=len, reverse=True):
            rest = rest.replace(w, "")
        rest = re.sub(r"[呀啊吧呢哦嘛啦哈了的我你大家各位们都]", "", rest)
        if not rest:
            return "thanks" if _hits(core, lx.thanks) else "greeting"
    return None


def _clarify_text(matches, lx: Lexicons) -> str:
    options = "\n".join(f"{i}. {m.entry.title}" for i, m in enumerate(matches, 1))
    return lx.answers["clarify"].format(options=options)


def classify(text: str, chat: str = "private", role: str = "owner") -> RouteResult:
    """The router's classifier (pure: reads lexicons and the KB, writes nothing)."""
    from faq import matcher
    from faq.normalize import clean

    lx = lexicons()
    raw_clean = clean(text)
    # Lexicons see the text as written AND with typos fixed (电悌 -> 电梯), so
    # neither a rewrite nor a typo hides a word.
    canon = matcher.default().index().rewrite(raw_clean)
    c = raw_clean if canon == raw_clean else f"{raw_clean}|{canon}"
    # "楼道灯又坏了": an adverb between a thing and its state hides the lexicons'
    # "灯坏", so they also see the text without it.
    bare = _ADVERB_GAP.sub("", raw_clean)
    if bare != raw_clean:
        c = f"{c}|{bare}"
    core = _core(raw_clean)
    in_group = chat in ("vip", "building")

    if any((text or "").strip().startswith(p) for p in lx.command_prefixes):
        return RouteResult(intent="command", score=1.0, answer=lx.answers["command"],
                           why="slash command not owned by any capability")

    kind = _smalltalk(raw_clean, lx)
    if kind is not None:
        answer = None if in_group else lx.answers[kind]
        return RouteResult(intent="smalltalk", score=1.0, answer=answer, why=f"small talk ({kind})")

    hand = _hits(c, lx.handoff)
    if hand:
        return RouteResult(intent="handoff", score=1.0, answer="好的，已为您转接人工客服，工作人员会在10分钟内回复您。",
                           why=f"asked for a person: {hand[0]}")

    mem = _hits(c, lx.membership)
    if mem:
        return RouteResult(intent="membership", score=1.0, answer=lx.answers["membership"],
                           why=f"own membership: {max(mem, key=len)}")

    # --- complaint / repair ---------------------------------------------------
    req = _hits(c, lx.c_request)
    prio, prio_word = classify_priority(c)
    booking = _booking(c, lx)
    if booking and not req and (prio_word is None or prio == "general"):
        # "我家狗没人照顾 能帮忙代管几天吗": a service asked for, nothing broken.
        return booking
    meta = _hits(c, lx.c_meta)
    event = _hits(c, lx.c_event)
    problem = prio_word is not None and (prio != "general" or _problem_cue(c) or bool(event))
    # "可以在微信上报修吗": a request word inside a question, with no problem
    # described, asks how things work.
    asks_only = (bool(req) and all(r in lx.c_topic for r in req) and not problem and not event
                 and bool(_QUESTION.search(c)))
    # "明天停水吗": a problem word in a yes/no question with nobody affected
    # is more likely a question for the KB; it stays a complaint if the KB has no answer.
    yes_no = problem and not req and not event and bool(re.search(r"[吗么?？]$", c.split("|")[0]))
    if (req or problem) and (not meta or event) and not asks_only and not (yes_no and _kb_answers(text)):
        cat, cat_word = classify_category(c)
        deciding = ", ".join(dict.fromkeys([*req[:2], *([prio_word] if prio_word else []), *event[:1]]))
        answer = lx.answers["complaint"].format(priority_text=lx.priority_text[prio])
        return RouteResult(intent="complaint", priority=prio, category=cat, score=0.9, answer=answer,
                           why=f"complaint/repair by [{deciding}]; priority {prio}"
                               f"{' by ' + prio_word if prio_word else ' (default)'}; category {cat}"
                               f"{' by ' + cat_word if cat_word else ' (default)'}")

    # --- booking --------------------------------------------------------------
    if booking:
        return booking

    # --- FAQ --------------------------------------------------------------------
    found = matcher.search(text, 3)
    top = found[0] if found else None
    if top and top.score >= matcher.ANSWER:
        return RouteResult(intent="faq", faq_id=top.id, score=top.score, answer=top.answer,
                           why=f"faq {top.id} ({top.entry.title}) score {top.score:.2f} by [{', '.join(top.terms)}]",
                           args={"candidates": [m.id for m in found]})
    is_question = bool(_QUESTION.search(c))
    thanks = _hits(raw_clean, lx.thanks)
    if thanks and not is_question:
        # "已经修好了，谢谢" / "谢谢你们及时处理": thanks with a tail, not a question.
        return RouteResult(intent="smalltalk", score=0.8, answer=None if in_group else lx.answers["thanks"],
                           why=f"thanks ({thanks[0]}), no question")
    chit = _hits(raw_clean, lx.chitchat)
    if chit and not is_question and not in_group and prio_word is None and classify_category(c)[1] is None:
        # "今天天气不错": friendly talk about nothing the community handles;
        # offering FAQ topics to it would read as a misunderstanding.
        return RouteResult(intent="smalltalk", score=0.8, answer=lx.answers["chitchat"],
                           why=f"chit-chat ({chit[0]}), no question")
    if in_group and not is_question:
        # Group chatter that is not a question: the bot stays quiet.
        return RouteResult(intent="smalltalk", score=top.score if top else 0.0,
                           why=f"group chatter, not a question (best {top.id if top else '-'} "
                               f"{top.score if top else 0:.2f})")
    if top and top.score >= matcher.CLARIFY:
        # Offer the 2-3 closest topics: the best one plus any runner-up that is not far-fetched.
        close = [top] + [m for m in found[1:] if m.score >= 0.1]
        return RouteResult(intent="faq", score=top.score, answer=_clarify_text(close, lx),
                           why=f"unsure: closest {', '.join(f'{m.id} {m.score:.2f}' for m in close)} "
                               f"below {matcher.ANSWER}; asking which one",
                           args={"clarify": [m.id for m in close]})
    return RouteResult(intent="handoff", score=top.score if top else 0.0, answer=lx.answers["handoff"],
                       why=f"nothing close enough (best {top.id if top else '-'} "
                           f"{top.score if top else 0:.2f} < {matcher.CLARIFY}); handed to a person",
                       args={"candidates": [m.id for m in found]})


def _booking(c: str, lx: Lexicons) -> RouteResult | None:
    """A service asked for (verb + service), unless it asks how booking works."""
    verbs = _hits(c, lx.b_verbs)
    services = _hits(c, lx.b_services)
    if not (verbs and services):
        return None
    strong = _hits(c, lx.b_strong)
    asks = _hits(c, lx.b_meta) or _QUESTION.search(c)
    if asks and not strong:
        return None
    return RouteResult(intent="booking", score=0.9, answer=lx.answers["booking"],
                       why=f"booking by [{', '.join(dict.fromkeys(verbs[:1] + services[:2] + strong[:1]))}]")


def _kb_answers(text: str) -> bool:
    from faq import matcher

    found = matcher.search(text, 1)
    return bool(found) and found[0].score >= matcher.ANSWER


_CUES = re.compile(r"太|很差|好差|真差|差劲|脏|臭|吵|乱|没人|不管|坏|堵|漏|又|一直|严重|受不了|影响|占|堆|不亮|不行|不能用|"
                   r"不工作|失灵|有问题|出问题|烦死|好烦|真烦|到处|满地|天天|每天|半夜|凌晨|恶心|好几天|好久没|很久没|没修剪|没人修|没人清")


_ADVERB_GAP = re.compile(r"(?<=[\u4e00-\u9fff])(?:又|都|也|全|还|老是|总是|经常|突然|一直)"
                         r"(?=坏|不亮|漏|堵|停|没电|没水|爆|不动|失灵|故障|断)")


def _problem_cue(c: str) -> bool:
    """A topic word such as 垃圾 or 停车 is a complaint only with a sign of trouble."""
    return bool(_CUES.search(c))


classifier_hook.set_classifier(classify)


# --- handlers: reply and record what the bot could not answer ------------------------

CLARIFY_CONV = "faq_clarify"


def record_miss(ctx: Context, msg: Message, route: RouteResult, kind: str) -> None:
    """A question the knowledge base could not answer outright, for managers."""
    from faq.normalize import clean
    from store.models.faq import FaqMiss

    cands = route.args.get("clarify") or route.args.get("candidates") or []
    ctx.session.add(FaqMiss(text=(msg.text or "")[:1000], normalized=clean(msg.text or "")[:500], chat=msg.chat,
                            sender=msg.sender, kind=kind, best_id=cands[0] if cands else None,
                            best_score=float(route.score or 0.0), candidates=list(cands), created_at=ctx.now))
    ctx.session.flush()


@registry.intent_handler("faq")
def on_faq(ctx: Context, msg: Message, route) -> Outcome:
    if isinstance(route, RouteResult) and route.args.get("clarify"):
        record_miss(ctx, msg, route, "clarify")
        conversation.start(ctx.session, msg.sender, msg.chat, CLARIFY_CONV,
                           {"options": route.args["clarify"], "text": msg.text}, ctx.now, group_id=msg.group_id)
    return Outcome(replies=[route.answer] if route and route.answer else [], intent="faq")


@registry.intent_handler("handoff")
def on_handoff(ctx: Context, msg: Message, route) -> Outcome:
    if isinstance(route, RouteResult):
        record_miss(ctx, msg, route, "handoff")
    out = Outcome(replies=[route.answer] if route and route.answer else [lexicons().answers["handoff"]],
                  intent="handoff")
    out.pushes += consult_person(ctx, msg)
    return out


def consult_person(ctx: Context, msg: Message) -> list:
    """A private question handed to a person starts the O1 first-response clock
    (10 minutes) with a task card for the owner's agent or customer service."""
    if msg.chat != "private" or msg.channel != "mp":
        return []
    from handlers.identity import find_owner
    from handlers.membership import hand_to_person

    owner = find_owner(ctx.session, msg)
    if owner is None:
        return []
    _reply, pushes = hand_to_person(ctx.session, owner, msg.text, ctx.now)
    return pushes


@registry.conversation_handler(CLARIFY_CONV)
def on_clarify_reply(ctx: Context, msg: Message, conv) -> Outcome | None:
    """The owner picks one of the offered topics by number; anything else is a
    new message (returns None so the router handles it)."""
    from faq import matcher

    conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
    m = re.fullmatch(r"\s*([1-9])\s*", msg.text or "")
    options = (conv.state or {}).get("options") or []
    if not m or int(m.group(1)) > len(options):
        return None
    entry = matcher.default().index().kb.by_id.get(options[int(m.group(1)) - 1])
    if entry is None:
        return None
    return Outcome(replies=[entry.answer], intent="faq")
