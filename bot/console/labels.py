"""What the console shows instead of internal codes: names of clocks, categories,
services, states and verdicts, a ticket's history as sentences, times in the
community's time zone. The words are data (handlers/data/display_labels.yaml),
checked on load (a clock without a name is reported and shown by its
clocks.yaml title; the tests require every clock named).

Shared by the console pages, the Excel exports and `guanjia faq misses`.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from ground import clock, rules
from ground.rules import RulesError
from handlers.clocks import calendar
from handlers.membership.notify import service_policies
from handlers.tickets.core import CATEGORY_LABELS
from handlers.tickets.policy import policy
from store.models import ConsoleUser, Owner, Staff

DATA = Path(__file__).resolve().parent.parent.parent / "handlers" / "data"
LABELS_FILE = DATA / "display_labels.yaml"
log = logging.getLogger(__name__)
_MAPS = ("clocks", "member_clocks", "calendar_clocks", "audiences", "categories", "kinds", "teams", "ticket_states", "booking_states", "channels", "roles", "spend_categories",
         "violations", "moderation_steps", "moderation_status", "ticket_events", "event_words", "audit_actions",
         "audit_fields", "miss_kinds")


LabelsError = RulesError  # the one error type of rule files (ground/rules.py)
_WORDS = rules.MapOf(rules.Text(), min=1)
SCHEMA = rules.Record({section: _WORDS for section in _MAPS},
                      amber=rules.Record(fraction=rules.Number(min=0, max=0.999999), min_minutes=rules.Number(min=0)))


def _build(data: dict, src: rules.Source) -> dict[str, Any]:
    missing = missing_clock_names(data)
    if missing:  # the page still works (with the clocks.yaml title); tests/test_console_words.py fails
        log.warning("%s: no name for clock(s) %s; the console shows their clocks.yaml titles",
                    src.name, ", ".join(missing))
    return data


LABELS = rules.RuleFile(LABELS_FILE, schema=SCHEMA, build=_build)


def labels() -> dict[str, Any]:
    """The labels file, checked: every section a mapping of words, every clock named."""
    return LABELS.get(LABELS_FILE)


labels.cache_clear = LABELS.reload  # type: ignore[attr-defined]  (tests swap LABELS_FILE)


def _clock_specs() -> tuple[list, list]:
    """The clock policies: tickets' (clocks.yaml) and services' (member_clocks.yaml)."""
    p = policy()
    tickets = [c for cls in p.classes.values() for c in cls.clocks]
    tickets += [c for cs in p.kinds.values() for c in cs] + list(p.all)
    return tickets, list(service_policies().values())


@lru_cache(maxsize=1)
def _clock_titles() -> dict[str, str]:
    """clock id -> its title in clocks.yaml / member_clocks.yaml (the fall-back name)."""
    tickets, services = _clock_specs()
    return {c.id: c.title or "时限" for c in tickets + services}


def missing_clock_names(data: dict | None = None) -> list[str]:
    """Clocks of clocks.yaml / member_clocks.yaml / calendar_clocks.yaml the labels do not
    name (they would show their long titles instead of a chip's short name)."""
    data = data if data is not None else labels()
    tickets, services = _clock_specs()
    missing = sorted({c.id for c in tickets} - set(data["clocks"]))
    missing += sorted({c.id for c in services} - set(data["member_clocks"]))

    missing += sorted(set(calendar.policies()) - set(data["calendar_clocks"]))
    return missing


def word(section: str, key: str | None, default: str | None = None) -> str:
    """The label of `key` in `section`; unknown keys as given (or `default`)."""
    if key is None or key == "":
        return default or ""
    return labels()[section].get(key, default if default is not None else key)


# --- time: the community's zone and how it reads a time (ground/clock.py) ---------------------

# Named here too because the console's templates and views say labels.fmt_time.
tz, local, fmt_time, fmt_when = clock.zone, clock.local, clock.fmt_time, clock.fmt_when


def human_span(delta: timedelta) -> str:
    """A length of time the way a chip says it: 1分钟, 2小时15分钟, 23小时, 3天2小时."""
    mins = int(abs(delta.total_seconds()) // 60)
    if mins < 60:
        return f"{max(mins, 0)}分钟"
    hours, rest = divmod(mins, 60)
    if hours < 10:
        return f"{hours}小时{rest}分钟" if rest else f"{hours}小时"
    if hours < 48:
        return f"{hours}小时"
    days, hours = divmod(hours, 24)
    return f"{days}天{hours}小时" if hours else f"{days}天"


def time_left(due_at: datetime, now: datetime) -> str:
    """剩余23小时 / 超时1分钟."""
    delta = due_at - now
    if delta.total_seconds() < 0:
        return "超时" + human_span(delta) if delta <= timedelta(minutes=-1) else "刚刚超时"
    return "剩余" + human_span(delta) if delta >= timedelta(minutes=1) else "剩余不到1分钟"


# --- clocks -------------------------------------------------------------------------------------

def clock_name(clock_id: str) -> str:
    lab = labels()
    return (lab["clocks"].get(clock_id) or lab["member_clocks"].get(clock_id) or _clock_titles().get(clock_id)
            or "时限")


def amber_from(started_at: datetime, due_at: datetime, warn_at: datetime | None) -> datetime:
    """The moment a clock turns amber (see display_labels.yaml `amber`)."""
    a = labels()["amber"]
    window = max(timedelta(minutes=float(a["min_minutes"])), (due_at - started_at) * float(a["fraction"]))
    if warn_at is not None and warn_at < due_at:
        window = max(window, due_at - warn_at)
    return due_at - window


def clock_color(state: str, started_at: datetime, due_at: datetime, warn_at: datetime | None, now: datetime) -> str:
    """grey = over (met/cancelled), red = broken, amber = close to breaking, green = time left."""
    if state in ("met", "cancelled", "late", "breached_met"):
        return "grey"
    if state == "breached" or now >= due_at:
        return "red"
    return "amber" if now >= amber_from(started_at, due_at, warn_at) else "green"


# --- names --------------------------------------------------------------------------------------

def category(key: str | None) -> str:
    if not key:
        return "其他"

    return labels()["categories"].get(key) or CATEGORY_LABELS.get(key) or "其他"


def service(key: str | None) -> str:
    """A bookable service's name from the catalogue (services.yaml)."""
    if not key:
        return ""
    try:
        from handlers.bookings.catalogue import catalogue

        svc = catalogue().get(key)
        if svc is not None:
            return svc.name
    except Exception:  # the catalogue is the bookings capability's; a name is not worth a 500
        pass
    return key


def spend_category(key: str | None) -> str:
    """What a spend entry was for: the spend labels, else a bookable service's name."""
    if not key:
        return "其他消费"
    named = labels()["spend_categories"].get(key)
    if named:
        return named
    name = service(key)
    return name if name != key else "其他消费"


class Names:
    """Who an actor is, for people: staff userid -> name, owner openid -> 业主 name,
    console:user -> the console user's name, bot/clock -> 管家/系统. Looked up once
    per instance (one per request)."""

    SYSTEM = {"bot": "管家", "clock": "系统", "system": "系统", "scheduler": "系统", "wecom": "企业微信"}

    def __init__(self, session) -> None:
        from sqlalchemy import select

        self.session = session
        self.staff = {s.userid: s.name for s in session.scalars(select(Staff))}
        self.users = {u.username: u.name for u in session.scalars(select(ConsoleUser))}
        self._owners: dict[str, str] | None = None
        self._select, self._Owner = select, Owner

    def owner(self, ident: str) -> str | None:
        """业主 name for an openid / external userid, looked up once each (a
        community has thousands of owners; a page names a few)."""
        if self._owners is None:
            self._owners = {}
        if ident not in self._owners:
            Owner = self._Owner
            o = self.session.scalar(self._select(Owner).where(
                (Owner.openid == ident) | (Owner.external_userid == ident)).limit(1))
            self._owners[ident] = (f"业主{o.name}" if o.name else "业主") if o is not None else None
        return self._owners[ident]

    def __call__(self, actor: str | None) -> str:
        if not actor:
            return ""
        if actor in self.staff:
            return self.staff[actor]
        if actor in self.SYSTEM:
            return self.SYSTEM[actor]
        if ":" in actor:
            how, _, who = actor.partition(":")
            if how == "console":
                return self.users.get(who, "管理员" if who == "admin" else who)
            if how == "api":
                return f"{self.users.get(who, '管理员' if who == 'admin' else who)}（接口）"
        owner = self.owner(actor) if len(actor) <= 64 else None
        if owner:
            return owner
        if actor in self.users:  # a console username (the target of a sign-in)
            return self.users[actor]
        if "|" in actor:
            return "、".join(self(a) for a in actor.split("|"))
        if re.fullmatch(r"[A-Za-z0-9_-]{20,}", actor):  # an openid we no longer know: never on screen
            return "业主"
        return actor

    def many(self, value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return "、".join(self(str(v)) for v in value)
        return self(str(value)) if value is not None else ""


# --- ticket history -----------------------------------------------------------------------------

_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_FIELD = re.compile(r"\{(\w+)\}")
_PEOPLE_FIELDS = ("to", "frm", "holder", "assigned_to", "by")


def _fill(template: str, values: dict[str, str]) -> str:
    def optional(m: re.Match) -> str:
        inner = m.group(1)
        return _FIELD.sub(lambda f: values.get(f.group(1), ""), inner) if all(
            values.get(f) for f in _FIELD.findall(inner)) else ""
    return _FIELD.sub(lambda f: values.get(f.group(1), ""), _OPTIONAL.sub(optional, template))


def event_sentence(action: str, actor: str | None, detail: dict | None, names: Callable[[Any], str] | Names,
                   now: datetime | None = None) -> str:
    """One event of a ticket's history as a sentence ("老周接单"), never a field dump."""
    lab = labels()
    detail = detail or {}
    many = names.many if isinstance(names, Names) else (lambda v: names(v))
    values: dict[str, str] = {"actor": names(actor) if actor else ""}
    for k, v in detail.items():
        word = _event_value(k, v, many, now, lab["event_words"])
        if word is not None:
            values[k] = word
    values.setdefault("clock", "时限")
    template = lab["ticket_events"].get(action)
    if template is None:  # an event the labels do not know yet: its name, no fields
        return (values["actor"] + "：" if values["actor"] else "") + "其他记录"
    return _fill(template, values)


def _event_value(k: str, v: Any, many: Callable[[Any], str], now: datetime | None,
                 event_words: dict[str, str]) -> str | None:
    """One field of an event's detail in words (None: it is not shown)."""
    if v is None or v == "" or isinstance(v, dict):
        return None
    if k in _PEOPLE_FIELDS:
        return many(v)
    if k == "clock":
        return clock_name(str(v))
    if k == "due_at":
        try:
            return fmt_when(datetime.fromisoformat(str(v)), now)
        except ValueError:
            return None
    if k == "category":
        return category(str(v))
    if isinstance(v, (list, tuple)):
        return "、".join(str(x) for x in v)
    return event_words.get(str(v), str(v))


# --- audit log ---------------------------------------------------------------------------------

def audit_action(action: str) -> str:
    return labels()["audit_actions"].get(action, "其他操作")


def audit_target(target: str | None, names: Names, groups: dict[str, str] | None = None) -> str:
    """owner:12 -> 业主 王芳 (1-1201); ticket:5 -> 工单 T5; chat ids -> group names."""
    if not target:
        return ""
    groups = groups or {}
    kind, _, ident = target.partition(":")
    if ident and kind == "owner" and ident.isdigit():
        o = names.session.get(Owner, int(ident))
        return f"业主 {o.name}（{o.room or '未绑定'}）" if o else "业主（已删除）"
    prefixes = {"ticket": "工单 T", "booking": "预约 B", "application": "升级申请 M", "miss": "未回答问题 #",
                "faq": "知识库条目 ", "user": "账号 "}
    if ident and kind in prefixes:
        return prefixes[kind] + ident
    if "/" in target:
        chat, _, member = target.partition("/")
        return f"{groups.get(chat, '群')} · {names(member)}"
    if target in groups:
        return groups[target]
    return names(target)


def _code_word(value: str) -> str | None:
    """A lower-case code kept in a detail ("ad", "requested", "warn") in words, if known."""
    if not re.fullmatch(r"[a-z_]+", value):
        return None
    lab = labels()
    for section in ("violations", "moderation_steps", "booking_states", "ticket_states", "moderation_status",
                    "kinds", "roles"):
        if value in lab[section]:
            return lab[section][value]
    return None


def audit_detail(detail: Any, names: Names) -> str:
    """The detail kept with an audit row, in words ("原因：… · 结果数：3")."""
    if not detail:
        return ""
    if not isinstance(detail, dict):
        return str(detail)[:200]
    fields = labels()["audit_fields"]
    parts = []
    for k, v in detail.items():
        word = _audit_value(k, v, names)
        if word is not None:
            parts.append(f"{fields.get(k, '其他')}：{word}")
    return " · ".join(parts)[:300]


def _audit_value(k: str, v: Any, names: Names) -> Any:
    """One field of an audit row's detail in words (None: it is not shown)."""
    if v is None or v == "" or v == [] or isinstance(v, dict):
        return None
    if k == "results" and isinstance(v, list):
        return len(v)
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, (list, tuple)):
        return "、".join(names(str(x)) for x in v[:10])
    if k in ("from", "to", "member", "actor", "by"):
        return _code_word(str(v)) or names(str(v))
    if isinstance(v, str):
        return _code_word(v) or v
    return v
