"""Understanding owners: the intent classifier installed into the router, and
the FAQ / handoff intent handlers that reply and record unanswered questions.

`classify()` is pure (the router's `route()` must have no side effects);
misses are written by the intent handlers, which run only when a message is
really handled.

Decisions: rules only where they are certain (slash command; a message that
is all small talk, handlers/data/intents.yaml); the intent and the priority
are learned (faq/intent_model.py, from handlers/data/train/*.jsonl); the
safety rules of handlers/data/priority.yaml sit on top (a reported hazard is
a complaint and never below urgent); an FAQ answer comes from faq/retrieval.py
(BM25 + sentence embeddings, calibrated: answer, offer 2-3 close topics, or
hand off).
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from faq import intent_model, matcher, pinyin, retrieval, semantic
from faq.normalize import clean
from ground import rules as rulefiles
from ground.rules import RulesError
from handlers import classifier_hook, conversation, question_gate
from handlers.capability import Capability
from handlers.identity import find_owner
from handlers.membership import hand_to_person
from handlers.membership.notify import fill_promises
from handlers.message import Context, Message, Outcome
from handlers.route_result import RouteResult
from store.models.faq import FaqMiss

log = logging.getLogger(__name__)

# The FAQ and the intent model: the knowledge base, its CLI and the models loaded
# once in the worker parent, so no owner's message pays for them.
capability = Capability("understanding")
capability.models("store.models.faq")
capability.cli("handlers.evaluate:faq")  # the faq group, with `eval` added beside the router
for _warm in ("faq.matcher:warm_up", "faq.retrieval:warm_up", "faq.intent_model:warm_up",
              "handlers.understanding:warm_up_gate", "faq.pinyin:warm_up"):
    capability.warm_up(_warm)

DATA = Path(__file__).resolve().parent / "data"
INTENTS_FILE = DATA / "intents.yaml"
PRIORITY_FILE = DATA / "priority.yaml"
MEMBER_CLOCKS_FILE = DATA / "member_clocks.yaml"

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_QUESTION = re.compile(r"[?？吗么呢]|怎么|怎样|如何|多久|多长|多少|什么|哪|几|是否|是不是|能不能|可不可以|有没有|会不会|啥|咋|谁")
_TRAILING = re.compile(r"[呀啊吧呢哦嘛啦哈~～!！。.,，]+$")
PRIORITIES = ("urgent", "important", "general")
CATEGORIES = ("repair", "sanitation", "security", "neighbour", "noise", "facility", "other")


LexiconError = RulesError  # the one error type of rule files (ground/rules.py)


def _words(file: Path, section: str, value) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and str(v).strip() for v in value):
        raise LexiconError(f"{file.name}: {section}: must be a list of non-empty words")
    return tuple(dict.fromkeys(clean(str(v)) for v in value))


# A pattern may leave a gap between two words only with a bound ({0,6}): an
# unbounded one (.*, +) could make matching super-linear on a long message.
_UNBOUNDED = re.compile(r"(?<!\\)[*+]|\{\d*,\}")


def _patterns(file: Path, section: str, value) -> tuple[re.Pattern, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise LexiconError(f"{file.name}: {section}: must be a list of regular expressions")
    out = []
    for v in value:
        if _UNBOUNDED.search(v):
            raise LexiconError(f"{file.name}: {section}: {v!r}: use a bounded gap such as .{{0,6}}, not * or +")
        try:
            out.append(re.compile(v))
        except re.error as exc:
            raise LexiconError(f"{file.name}: {section}: {v!r}: {exc}") from None
    return tuple(out)


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
    answers: dict[str, str]
    priority: dict[str, tuple[str, ...]]
    urgent_patterns: tuple[re.Pattern, ...]
    asking: tuple[str, ...]
    hypothetical: tuple[str, ...]
    reporting: tuple[str, ...]
    priority_text: dict[str, str]
    category: dict[str, tuple[str, ...]]
    complaint_words: tuple[str, ...] = ()
    not_hazard: tuple[re.Pattern, ...] = ()
    asking_in_question: tuple[str, ...] = ()
    not_urgent: tuple[str, ...] = ()
    contact_asks: tuple[str, ...] = ()
    not_handoff: tuple[str, ...] = ()
    bot_complaints: tuple[str, ...] = ()
    demand_words: tuple[str, ...] = ()
    planned: tuple[str, ...] = ()
    living_now: tuple[str, ...] = ()
    not_reporting: tuple[str, ...] = ()
    permission_asks: tuple[re.Pattern, ...] = ()
    not_permission: tuple[str, ...] = ()


def load_lexicons(intents_file: Path = INTENTS_FILE, priority_file: Path = PRIORITY_FILE) -> Lexicons:
    """Read and validate both lexicon files; errors name the file and section."""
    return LEXICONS.get(intents_file, priority_file, MEMBER_CLOCKS_FILE)


def _build_lexicons(it, pr, _clocks, srcs: tuple[rulefiles.Source, ...]) -> Lexicons:
    f, priority_file = srcs[0].path, srcs[1].path

    def sec(data: dict, path: str, file: Path):
        cur = data
        for part in path.split("."):
            if not isinstance(cur, dict) or part not in cur:
                raise LexiconError(f"{file.name}: {path}: missing")
            cur = cur[part]
        return cur

    answers = sec(it, "answers", f)
    for key in ("complaint", "booking", "membership", "command", "clarify", "hedge", "handoff", "person", "offtopic", "help",
                "greeting", "thanks", "chitchat"):
        if not isinstance(answers.get(key), str):
            raise LexiconError(f"{f.name}: answers.{key}: missing or not text")
    try:
        answers = {k: fill_promises(str(v)) for k, v in answers.items()}
    except ValueError as exc:
        raise LexiconError(f"{f.name}: answers: {exc}") from None
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
        contact_asks=_words(f, "contact_asks", it.get("contact_asks") or []),
        not_handoff=_words(f, "not_handoff", it.get("not_handoff") or []),
        bot_complaints=_words(f, "bot_complaints", it.get("bot_complaints") or []),
        demand_words=_words(f, "demand_words", it.get("demand_words") or []),
        permission_asks=_patterns(f, "permission_asks", it.get("permission_asks") or []),
        not_permission=_words(f, "not_permission", it.get("not_permission") or []),
        complaint_words=_words(f, "complaint_words", it.get("complaint_words") or []),
        greetings=_words(f, "smalltalk.greetings", sec(it, "smalltalk.greetings", f)),
        thanks=_words(f, "smalltalk.thanks", sec(it, "smalltalk.thanks", f)),
        help=_words(f, "smalltalk.help", sec(it, "smalltalk.help", f)),
        chatter=_words(f, "smalltalk.chatter", sec(it, "smalltalk.chatter", f)),
        chitchat=_words(f, "smalltalk.chitchat", sec(it, "smalltalk.chitchat", f)),
        small_max=int(sec(it, "smalltalk.max_len", f)),
        answers={k: str(v) for k, v in answers.items()},
        priority=prio, priority_text=prio_text,
        asking=_words(priority_file, "asking", pr.get("asking") or []),
        hypothetical=_words(priority_file, "hypothetical", pr.get("hypothetical") or []),
        reporting=_words(priority_file, "reporting", pr.get("reporting") or []),
        not_reporting=_words(priority_file, "not_reporting", pr.get("not_reporting") or []),
        urgent_patterns=_patterns(priority_file, "priority.urgent.patterns", pr["priority"]["urgent"].get("patterns") or []),
        not_hazard=_patterns(priority_file, "not_hazard", pr.get("not_hazard") or []),
        asking_in_question=_words(priority_file, "asking_in_question", pr.get("asking_in_question") or []),
        not_urgent=_words(priority_file, "not_urgent", pr.get("not_urgent") or []),
        planned=_words(priority_file, "planned", pr.get("planned") or []),
        living_now=_words(priority_file, "living_now", pr.get("living_now") or []),
        category={c: _words(priority_file, f"category.{c}", v) for c, v in cats.items()},
    )


# Reloaded when a manager edits a file (looked at every few seconds); a broken
# edit keeps the last good version and is logged (ground/rules.py).
# member_clocks.yaml too: the answers' promises (「{promise:O1}」) follow its minutes.
LEXICONS = rulefiles.RuleFile(INTENTS_FILE, PRIORITY_FILE, MEMBER_CLOCKS_FILE, build=_build_lexicons, check_every=2.0)


def lexicons() -> Lexicons:
    """The intent and priority lexicons (intents.yaml, priority.yaml)."""
    return LEXICONS.get()


def _hits(text: str, words: tuple[str, ...]) -> list[str]:
    return [w for w in words if w in text]


def _asks_permission(c: str, lx: Lexicons) -> str | None:
    """The ending that asks whether one may ("行不行", "允许吗", "能放家里不"), unless someone
    else does it or the property is asked to act (intents.yaml permission_asks, not_permission)."""
    core = _PUNCT.sub("", c)
    if _hits(core, lx.not_permission):
        return None
    for rx in lx.permission_asks:
        m = rx.search(core)
        if m:
            return m.group(0)
    return None


def _reporting(c: str, lx: Lexicons) -> list[str]:
    """The words saying someone lives it (我家, 现在, 了), not counting those inside words
    that only look like them (priority.yaml not_reporting: 了解, 为了)."""
    for w in lx.not_reporting:
        c = c.replace(w, "|")
    return _hits(c, lx.reporting)


def classify_priority(text: str) -> tuple[str, str | None]:
    """(priority, deciding word): the first class in urgent -> important ->
    general with a word in the text; general when none (every request has a clock)."""
    c = clean(text)
    for p in PRIORITIES:
        hit = _hits(_masked(c) if p == "urgent" else c, lexicons().priority[p])
        if hit:
            return p, max(hit, key=len)
    return "general", None


def classify_category(text: str) -> tuple[str, str | None]:
    """(category, deciding word): the category with the longest matching word
    (卫生间 is a room, not 卫生), ties broken by the order in priority.yaml."""
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


# In a group, a complaint the model is less sure of than this is taken for chatter.
GROUP_COMPLAINT_MIN = 0.5


def classify(text: str, chat: str = "private", role: str = "owner") -> RouteResult:
    """The router's classifier (pure: reads lexicons, the models and the KB, writes nothing).

    Rules decide only what is certain (a slash command, a message that is all
    small talk); the learned model (faq.intent_model) decides the intent; the
    safety rules of priority.yaml sit on top (a reported hazard is a complaint,
    never below urgent); FAQ answers come from faq.retrieval's calibrated decision.
    The order of the decisions below is the router's: keep it.

    A line typed in pinyin ("shuidianfei zai nali jiao") is read as the Chinese it
    sounds like first (faq/pinyin.py): every model and rule below reads characters."""
    reading = pinyin.read(text)
    if reading is None:
        return _classify(text, chat, role)
    result = _classify(reading, chat, role)
    result.why = f"pinyin read as 「{reading}」; {result.why}"
    return result


def _classify(text: str, chat: str, role: str) -> RouteResult:
    lx = lexicons()
    raw_clean = clean(text)
    in_group = chat in ("vip", "building")
    certain = _certain(text, raw_clean, lx, in_group)
    if certain is not None:
        return certain

    c = _forms(raw_clean)
    vec = semantic.query_vector(text)
    pi, pp = intent_model.model().predict(text, vec)
    ranked = sorted(pi.items(), key=lambda kv: -kv[1])
    intent, p_top = ranked[0]
    feats = f"model {intent} {p_top:.2f}, next {ranked[1][0]} {ranked[1][1]:.2f}"
    hazard = safety_hit(c)
    reporting = _reporting(c, lx)
    # "要是水管爆了找谁" always asks; "停电通知几点" asks unless someone lives it now; a planned
    # outage asked about asks even in a run-on that says 我家 ("通知说要停水 我家有老人 停多久").
    asking = _what_if(c, lx) or _planned(c, lx) or ([] if reporting else _asking(c, lx))
    # "人工客服电话多少" asks for a number, which the KB has: no hand-off for that (unless the
    # owner gives their own number to be called back); "是真人还是机器人" asks about the bot.
    contact = [] if _OWN_NUMBER.search(c) else _hits(c, lx.contact_asks)
    hand = [] if contact or _hits(c, lx.not_handoff) else _hits(c, lx.handoff)
    intent, feats = _overruled(intent, feats, pi, c, lx, hazard, reporting, asking, hand, contact)

    answered = _gate_answer(text, vec, c, len(raw_clean), lx, intent, pi, hazard, asking, hand)
    if answered is not None:
        return answered

    topic = _topic_word(text, vec, raw_clean, c, lx, in_group, intent, pi, hazard, reporting, hand, feats)
    if topic is not None:
        return topic

    if (intent == "complaint" and in_group and not hazard and not _hits(c, lx.complaint_words)
            and pi.get("complaint", 0.0) < GROUP_COMPLAINT_MIN):
        # Group chatter ("那我不说了") opens no ticket on a hesitant guess; a private chat may.
        return RouteResult(intent="smalltalk", score=round(p_top, 3), answer=None,
                           why=f"group chatter ({feats}; complaint below {GROUP_COMPLAINT_MIN})")
    if intent == "complaint":
        return _complaint(c, lx, pp, hazard, asking, feats, intent_model.model().predict_category(text, vec))
    if intent in _PLAIN_INTENTS:
        answer_key, why = _PLAIN_INTENTS[intent]
        return RouteResult(intent=intent, score=round(p_top, 3), answer=lx.answers[answer_key],
                           why=why.format(feats=feats))
    if intent == "smalltalk" or intent == "offtopic":
        return _talk(raw_clean, c, lx, in_group, intent, p_top, feats)
    return _faq(text, vec, c, lx, in_group, feats, pi.get("faq", 0.0))


# Intents whose reply is one fixed answer of intents.yaml: intent -> (answer, why).
_PLAIN_INTENTS: dict[str, tuple[str, str]] = {
    "booking": ("booking", "booking ({feats})"),
    "membership": ("membership", "own membership ({feats})"),
    "handoff": ("person", "asks for a person ({feats})"),
}


def _certain(text: str, raw_clean: str, lx: Lexicons, in_group: bool) -> RouteResult | None:
    """What the rules decide before any model: a slash command, a message all small talk."""
    if any((text or "").strip().startswith(p) for p in lx.command_prefixes):
        return RouteResult(intent="command", score=1.0, answer=lx.answers["command"],
                           why="slash command not owned by any capability")
    kind = _smalltalk(raw_clean, lx)
    if kind is not None:
        answer = None if in_group else lx.answers[kind]
        return RouteResult(intent="smalltalk", score=1.0, answer=answer, why=f"small talk ({kind})",
                           args={"talk": kind})
    return None


# A phone number in the text: the owner gives theirs, and asks for nothing to be looked up.
_OWN_NUMBER = re.compile(r"\d{7,}")


def _overruled(intent: str, feats: str, pi: dict[str, float], c: str, lx: Lexicons, hazard: str | None,
               reporting: list[str], asking: list[str], hand: list[str],
               contact: list[str]) -> tuple[str, str]:
    """The model's intent, unless a rule says otherwise (first that applies wins), and why."""
    # Safety on top: a hazard (flood, fire, electricity, trapped, poison) that the
    # owner may be reporting is a complaint, even when the model leans elsewhere.
    if hazard and not asking and intent != "complaint" and (reporting or pi.get("complaint", 0.0) >= HAZARD_COMPLAINT_MIN):
        return "complaint", (f"{feats}; safety rule {hazard!r}, reported"
                             f" ({reporting[0] if reporting else 'complaint %.2f' % pi['complaint']})")
    what_if = _what_if(c, lx)
    if intent == "complaint" and what_if and (pi.get("faq", 0.0) >= 0.2 or
                                              (_QUESTION.search(c) and not _now(reporting))):
        # "要是哪天水管爆了 先关总阀还是先找你们": a what-if is a question, not a ticket
        # (asked as a question and told by nobody living it now, whatever the model leans to).
        return "faq", f"{feats}; what-if ({what_if[0]}) with faq {pi['faq']:.2f}"
    may = _asks_permission(c, lx)
    if intent == "complaint" and may and not (hazard and reporting):  # a hazard told stays a ticket
        # "我放个鞋柜和婴儿车行不行": whether one may do something is a rule to tell, not a ticket.
        return "faq", f"{feats}; asks whether one may ({may})"
    if hand and intent not in ("complaint",):
        return "handoff", f"{feats}; asked for a person: {hand[0]}"
    about_bot = _hits(c, lx.bot_complaints) if hand and not hazard else []
    if about_bot:
        # "说了半天你都听不懂 换个人来": the complaint is about this conversation; a person answers it.
        return "handoff", f"{feats}; asked for a person ({hand[0]}) after {about_bot[0]}"
    if intent == "handoff" and contact:
        # "物业客服电话是多少 我找不到": the number is in the knowledge base; nobody need be paged.
        return "faq", f"{feats}; asks for a number: {contact[0]}"
    demand = _hits(c, lx.demand_words)
    if intent == "faq" and demand and not what_if and not _planned(c, lx):
        # "楼上天天电钻，有没有人管？": asks for something to be dealt with, not how a rule works.
        return "complaint", f"{feats}; asks for it to be dealt with: {demand[0]}"
    if intent in ("handoff", "smalltalk", "offtopic") and _hits(c, lx.complaint_words):
        # 「我想投诉」 / 「你好，我要报修」 names the wish outright: a complaint, whose intake asks what happened.
        return "complaint", f"{feats}; says it is a complaint: {_hits(c, lx.complaint_words)[0]}"
    return intent, feats


def _talk(raw_clean: str, c: str, lx: Lexicons, in_group: bool, intent: str, p_top: float,
          feats: str) -> RouteResult:
    """Small talk or off-topic as the model read it."""
    # Off-topic (stocks, forecasts, translation) is talk the community does not
    # handle: a polite word, never a rule from the KB, and nobody paged for it.
    thanks = _hits(raw_clean, lx.thanks)
    asks = bool(_QUESTION.search(c))
    kind = "offtopic" if intent == "offtopic" or (asks and not thanks) else ("thanks" if thanks else "chitchat")
    answer = None if in_group else lx.answers[kind]
    return RouteResult(intent="smalltalk", score=round(p_top, 3), answer=answer, why=f"small talk ({kind}; {feats})",
                       args={"talk": kind})


# A bare topic word ("宠物", "停车", "权益") asks about that topic: the model, trained on
# sentences, may take it for chatter or (below this) a complaint, but nothing is reported.
TOPIC_WORD_MAX = 4
TOPIC_COMPLAINT_BELOW = 0.6


def _topic_word(text: str, vec, raw_clean: str, c: str, lx: Lexicons, in_group: bool, intent: str,
                pi: dict[str, float], hazard: str | None, reporting: list[str], hand: list[str],
                feats: str) -> RouteResult | None:
    """One topic word: the entry it fits, or a menu of the (up to three) entries that
    name it, in retrieval's order; None when it is not one bare topic word. Also when the
    model reads the word as a question: retrieval alone offers one word only a menu or
    nothing, and "客服热线" has one entry whose title names it."""
    core = _core(raw_clean)
    if (len(core) > TOPIC_WORD_MAX or in_group or hazard or reporting or hand or _hits(c, lx.complaint_words)
            or not (intent in ("smalltalk", "offtopic", "faq") or
                    (intent == "complaint" and pi.get("complaint", 0.0) < TOPIC_COMPLAINT_BELOW))):
        return None
    found = _faq(text, vec, c, lx, in_group, feats, pi.get("faq", 0.0))
    if found.intent == "faq":
        return found
    kb = matcher.default().index().kb
    named = [e for e in kb.entries if core in e.title or core in e.tags or any(core in q for q in e.questions)]
    if not named:
        return None
    titled = [e for e in named if core in e.title or core in e.tags]
    if len(titled) == 1:
        named = titled  # "客服热线": the one entry whose title or tags name it is the answer, not a menu
    rank = {x.id: i for i, x in enumerate(retrieval.search(text, vec, 1.0).ranked)}
    named.sort(key=lambda e: rank.get(e.id, len(rank)))
    why = f"one topic word {core!r}: {len(named)} entries name it; {feats}"
    if len(named) == 1:
        e = named[0]
        return RouteResult(intent="faq", faq_id=e.id, score=0.5, answer=e.answer, why=f"faq {e.id} ({e.title}): {why}")
    menu = [retrieval.Candidate(entry=e, fused=0.0, cos=0.0, bm25=0.0) for e in named[:3]]
    return RouteResult(intent="faq", score=0.5, answer=_clarify_text(menu, lx), why=why,
                       args={"clarify": [e.id for e in named[:3]]})


def _what_if(c: str, lx: Lexicons) -> list[str]:
    """The what-if words of the text ("要是", "万一"), unless a hazard is told outside their
    clauses: "水管爆了 万一淹到楼下怎么办" reports a burst pipe and asks about what may
    follow; only "万一水管爆了…" asks about a hazard nobody has."""
    hits = _hits(c, lx.hypothetical)
    if not hits:
        return []
    # A hazard told outside the what-if clause, before it or after, is lived: "万一着火了怎么办
    # 家里煤气味很重" (cleaned text has no spaces, so a clause ends at its question word or
    # punctuation).
    rest = _what_if_clause(tuple(lx.hypothetical)).sub("|", c)
    return [] if safety_hit(rest) else hits


_CLAUSE_END = r"(?:怎么办|咋办|怎么弄|怎么处理|找谁|吗|呢|么|[,.!?|，。！？；;])"


@lru_cache(maxsize=8)
def _what_if_clause(markers: tuple[str, ...]) -> re.Pattern:
    """A what-if word and its clause: up to its question word or punctuation, at most 16
    characters (bounded: linear on any text)."""
    words = "|".join(re.escape(w) for w in sorted(set(markers), key=len, reverse=True))
    return re.compile(rf"(?:{words})[^,.!?|，。！？；;]{{0,16}}?{_CLAUSE_END}|(?:{words})[^,.!?|，。！？；;]{{0,16}}")


def _planned(c: str, lx: Lexicons) -> list[str]:
    """The words of a planned outage or works asked about, unless it is happening now."""
    hits = _hits(c, lx.planned)
    return [] if not hits or _hits(c, lx.living_now) else hits


def _now(reporting: list[str]) -> list[str]:
    """The words of someone living a problem now; a bare 了 tells a past event,
    maybe someone else's ("隔壁小区进小偷了 咱们这要是碰上…")."""
    return [w for w in reporting if w != "了"]


def warm_up_gate():
    """The question gate, fitted on the cues of this module (the lexicon files and this
    code are part of its cache key)."""
    return question_gate.gate(cues, (INTENTS_FILE, PRIORITY_FILE, Path(__file__)))


def cues(text: str) -> dict[str, float]:
    """The lexicons' cues of one message (handlers/question_gate.py's features)."""
    raw = clean(text)
    return _cues(_forms(raw), lexicons(), len(raw))


def _cues(c: str, lx: Lexicons, n_chars: int) -> dict[str, float]:
    reporting = _reporting(c, lx)
    return {"asks": float(bool(_QUESTION.search(c))), "reports_now": float(bool(_now(reporting))),
            "what_if": float(bool(_hits(c, lx.hypothetical))), "asking_words": float(bool(_hits(c, lx.asking))),
            "hand": float(bool(_hits(c, lx.handoff))), "complaint_words": float(bool(_hits(c, lx.complaint_words))),
            "hazard": float(safety_hit(c) is not None), "long": min(1.0, math.log1p(n_chars) / math.log1p(80))}


def _gate_answer(text: str, vec, c: str, n_chars: int, lx: Lexicons, intent: str, pi: dict[str, float], hazard: str | None,
                 asking: list[str], hand: list[str]) -> RouteResult | None:
    """A question the model takes for another intent, answered when the question gate
    (handlers/question_gate.py) takes it for a question and retrieval is sure of one entry.
    Never over a reported hazard, words asking for a person, saying it is a complaint or
    asking for something to be dealt with (demand_words)."""
    if (intent not in question_gate.OVERRIDABLE or (hazard and not asking) or hand or _hits(c, lx.complaint_words)
            or _hits(c, lx.demand_words)):
        return None
    d = retrieval.search(text, vec, pi.get("faq", 0.0))
    top = d.top
    if d.kind != "answer":
        return None
    g = warm_up_gate()
    x = question_gate.features(pi, top.p or 0.0, top.cos, _cues(c, lx, n_chars))
    p = g.proba(x)
    if p < question_gate.ANSWER_MIN:
        return None
    return RouteResult(intent="faq", faq_id=top.id, score=top.score, answer=top.entry.answer,
                       why=f"faq {top.id} ({top.entry.title}): a question, though the model leans to {intent} "
                           f"{pi[intent]:.2f}: question gate {p:.2f} ({g.explain(x)}); {d.why}; "
                           f"terms [{', '.join(top.terms)}]",
                       args={"candidates": [x.id for x in d.ranked[:3]]})


# A reported hazard overrides the model's intent only when the model gives a
# complaint at least this much: "停水到几点" (asking) stays a question.
HAZARD_COMPLAINT_MIN = 0.15


def _forms(raw_clean: str) -> str:
    """The text as written, with typos fixed (电悌 -> 电梯) and without an adverb
    between a thing and its state ("楼道灯又坏了" -> "楼道灯坏了"), joined by |,
    so neither a rewrite nor a typo hides a lexicon word."""
    canon = matcher.default().index().rewrite(raw_clean)
    c = raw_clean if canon == raw_clean else f"{raw_clean}|{canon}"
    bare = _ADVERB_GAP.sub("", raw_clean)
    return c if bare == raw_clean else f"{c}|{bare}"


def _asking(c: str, lx: Lexicons) -> list[str]:
    """The asking words in the text; those of asking_in_question ("的时候") only in a question."""
    hit = _hits(c, lx.asking)
    return hit + _hits(c, lx.asking_in_question) if _QUESTION.search(c) else hit


def _lookalike(c: str, lx: Lexicons) -> str | None:
    """A word of priority.yaml's not_urgent list, or a not_hazard span, in the text."""
    return _first_hit(c, lx.not_urgent, lx.not_hazard)


def _masked(c: str) -> str:
    """The text with priority.yaml's not_hazard spans ("没人被困", "门铃没电", "差点摔倒")
    replaced by a separator, so that they match no urgent word or pattern."""
    for rx in lexicons().not_hazard:
        c = rx.sub("|", c)
    return c


def safety_hit(c: str) -> str | None:
    """The hazard word or pattern of priority.yaml's urgent class in the text, if any
    (not in a span that says there is none: not_hazard)."""
    lx = lexicons()
    return _first_hit(_masked(c), lx.priority["urgent"], lx.urgent_patterns)


def _first_hit(c: str, words: tuple[str, ...], patterns: tuple[re.Pattern, ...]) -> str | None:
    """The longest of the words in the text, else the first pattern's match, else None."""
    hit = _hits(c, words)
    if hit:
        return max(hit, key=len)
    for rx in patterns:
        m = rx.search(c)
        if m:
            return m.group(0)
    return None


# The learned category is used when at least this sure; below, a category word
# of priority.yaml decides, else the model's best guess.
CATEGORY_MIN = 0.5


def _category(c: str, pc: dict[str, float]) -> tuple[str, str]:
    """(category, how it was decided)."""
    learned = max(pc, key=pc.get) if pc else None
    if learned and pc[learned] >= CATEGORY_MIN:
        return learned, f"model {learned} {pc[learned]:.2f}"
    cat, word = classify_category(c)
    if word:
        return cat, f"word {word!r}" + (f" (model {learned} {pc[learned]:.2f})" if learned else "")
    if learned:
        return learned, f"model {learned} {pc[learned]:.2f}"
    return "other", "default"


def _complaint(c: str, lx: Lexicons, pp: dict[str, float], hazard: str | None, asking: list[str],
               feats: str, pc: dict[str, float] | None = None) -> RouteResult:
    learned = max(pp, key=pp.get)
    prio, by = _complaint_priority(c, lx, pp, learned, hazard, asking)
    cat, cat_by = _category(c, pc or {})
    answer = lx.answers["complaint"].format(priority_text=lx.priority_text[prio])
    return RouteResult(intent="complaint", priority=prio, category=cat, score=round(pp[learned], 3), answer=answer,
                       why=f"complaint ({feats}); priority {prio} by {by}; category {cat} by {cat_by}")


def _complaint_priority(c: str, lx: Lexicons, pp: dict[str, float], learned: str, hazard: str | None,
                        asking: list[str]) -> tuple[str, str]:
    """(priority, why): the model's, unless a rule of priority.yaml says otherwise (first wins)."""
    if learned == "urgent" and not hazard:
        lookalike = _lookalike(c, lx)
        if lookalike:
            # Cigarette smoke, a dry stain, "没人被困": the model's "urgent" with no hazard in the
            # text gives way to important, never general (the model may see what the words miss).
            return "important", f"model urgent {pp['urgent']:.2f}, but no hazard and a look-alike {lookalike!r}"
    if hazard and not asking:
        return "urgent", f"safety rule {hazard!r}"
    if learned != "general":
        return learned, f"model {learned} {pp[learned]:.2f}"
    if hazard:
        return "important", f"safety rule {hazard!r} in a what-if ({asking[0]})"
    important = _hits(c, lx.priority["important"])
    if important:
        return "important", f"rule {max(important, key=len)!r}"
    if pp.get("urgent", 0.0) >= 0.3:
        # Never grade a possibly urgent case general: the cost of the two errors is not the same.
        return "important", f"model urgent {pp['urgent']:.2f} (not sure enough for urgent, too likely for general)"
    return learned, f"model {learned} {pp[learned]:.2f}"


def _faq(text: str, vec, c: str, lx: Lexicons, in_group: bool, feats: str, p_faq: float) -> RouteResult:
    d = retrieval.search(text, vec, p_faq)
    top = d.top
    if d.kind == "answer":
        return RouteResult(intent="faq", faq_id=top.id, score=top.score, answer=top.entry.answer,
                           why=f"faq {top.id} ({top.entry.title}): {d.why}; terms [{', '.join(top.terms)}]; {feats}",
                           args={"candidates": [x.id for x in d.ranked[:3]]})
    is_question = bool(_QUESTION.search(c))
    if in_group and not is_question:
        return RouteResult(intent="smalltalk", score=top.score if top else 0.0,
                           why=f"group talk, not a question: {d.why}; {feats}")
    if d.kind == "hedge":
        return RouteResult(intent="faq", faq_id=top.id, score=top.score, answer=f"{top.entry.answer}\n{lx.answers['hedge']}",
                           why=f"faq {top.id} ({top.entry.title}), not sure: {d.why}; terms [{', '.join(top.terms)}]; {feats}",
                           args={"candidates": [x.id for x in d.ranked[:3]], "hedge": True})
    if d.kind == "clarify":
        return RouteResult(intent="faq", score=top.score, answer=_clarify_text(d.ranked, lx),
                           why=f"two or three entries equally close: {d.why}; {feats}",
                           args={"clarify": [x.id for x in d.ranked]})
    return RouteResult(intent="handoff", score=top.score if top else 0.0, answer=lx.answers["handoff"],
                       why=f"no entry fits: {d.why}; {feats}; handed to a person",
                       args={"candidates": [x.id for x in d.ranked[:3]]})


_ADVERB_GAP = re.compile(r"(?<=[\u4e00-\u9fff])(?:又|都|也|全|还|老是|总是|经常|突然|一直)"
                         r"(?=坏|不亮|漏|堵|停|没电|没水|爆|不动|失灵|故障|断)")


classifier_hook.set_classifier(classify)


# --- handlers: reply and record what the bot could not answer ------------------------

CLARIFY_CONV = "faq_clarify"


def record_miss(ctx: Context, msg: Message, route: RouteResult, kind: str) -> None:
    """A question the knowledge base could not answer outright, for managers."""
    cands = route.args.get("clarify") or route.args.get("candidates") or []
    ctx.session.add(FaqMiss(text=(msg.text or "")[:1000], normalized=clean(msg.text or "")[:500], chat=msg.chat,
                            sender=msg.sender, kind=kind, best_id=cands[0] if cands else None,
                            best_score=float(route.score or 0.0), candidates=list(cands), created_at=ctx.now))
    ctx.session.flush()


@capability.intent("faq")
def on_faq(ctx: Context, msg: Message, route) -> Outcome:
    if isinstance(route, RouteResult) and route.args.get("hedge"):
        record_miss(ctx, msg, route, "unsure")  # answered, but a manager should check the match
    if isinstance(route, RouteResult) and route.args.get("clarify"):
        record_miss(ctx, msg, route, "clarify")
        conversation.start(ctx.session, msg.sender, msg.chat, CLARIFY_CONV,
                           {"options": route.args["clarify"], "text": msg.text}, ctx.now, group_id=msg.group_id)
    return Outcome(replies=[route.answer] if route and route.answer else [], intent="faq")


@capability.intent("handoff")
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
    owner = find_owner(ctx.session, msg)
    if owner is None:
        return []
    _reply, pushes = hand_to_person(ctx.session, owner, msg.text, ctx.now)
    return pushes


@capability.conversation(CLARIFY_CONV)
def on_clarify_reply(ctx: Context, msg: Message, conv) -> Outcome | None:
    """The owner picks one of the offered topics by number; anything else is a
    new message (returns None so the router handles it)."""
    conversation.end(ctx.session, msg.sender, msg.chat, msg.group_id)
    m = re.fullmatch(r"\s*([1-9])\s*", msg.text or "")
    options = (conv.state or {}).get("options") or []
    if not m or int(m.group(1)) > len(options):
        return None
    entry = matcher.default().index().kb.by_id.get(options[int(m.group(1)) - 1])
    if entry is None:
        return None
    return Outcome(replies=[entry.answer], intent="faq")
