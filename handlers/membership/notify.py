"""Who gets told, and in which shape: owners on the Official Account, staff on
WeCom (button cards for tasks, text for reminders)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ground import rules
from ground.limits import in_cs_window
from handlers.clocks.policy import ClockSpec, parse_clocks
from handlers.identity import find_staff
from handlers.message import Push
from store.models import Owner, Staff

CLOCKS_FILE = Path(__file__).resolve().parent.parent / "data" / "member_clocks.yaml"


# The events member services and consultations start and stop their clocks on.
SERVICE_EVENTS = ("handed_over", "answered", "submitted", "reviewed", "approved", "contacted", "done",
                  "feedback_sent")


def _build(data, src: rules.Source) -> tuple[dict, dict[str, ClockSpec]]:
    data = data or {}
    specs = parse_clocks(data.get("clocks"), f"{src.name}: clocks", SERVICE_EVENTS)
    return data, {s.id: s for s in specs}


CLOCKS = rules.RuleFile(CLOCKS_FILE, build=_build)


def clock_config(path: Path = CLOCKS_FILE) -> dict:
    """member_clocks.yaml as read (review team, booking horizon, agents ...)."""
    return CLOCKS.get(path)[0]


def service_policies(path: Path = CLOCKS_FILE) -> dict[str, ClockSpec]:
    """The O1-O3 clock policies by id, validated (handlers/clocks/policy.py)."""
    return CLOCKS.get(path)[1]


def promise(clock_id: str) -> str:
    """「10分钟内」 / 「2小时内」: what a reply promises, from the clock's policy in
    member_clocks.yaml (never written into a reply by hand)."""
    return service_policies()[clock_id].within


def fill_promises(text: str) -> str:
    """Replaces each 「{promise:O1}」 in a reply written as data with that clock's promise;
    an unknown clock id is a ValueError naming it."""
    def one(m: "re.Match") -> str:
        if m.group(1) not in service_policies():
            raise ValueError(f"{{promise:{m.group(1)}}} names no clock of member_clocks.yaml")
        return promise(m.group(1))

    return _PROMISE.sub(one, text)


_PROMISE = re.compile(r"\{promise:(\w+)\}")


def owner_push(owner: Owner, text: str, now: datetime, dedup_key: str | None = None,
               source: str | None = None, priority: int = 5) -> Push | None:
    """A message to an owner: a customer-service text inside the 48 h window,
    a template message outside it when one is configured (else text anyway,
    and the sender records the platform's refusal)."""
    if not owner.openid:
        return None
    template_id = clock_config().get("notice_template_id")
    recent = in_cs_window(owner.last_inbound_at, now)
    if template_id and not recent:
        return Push(channel="mp", recipient=owner.openid, kind="template",
                    payload={"template_id": template_id, "data": {"first": {"value": text[:200]}}},
                    dedup_key=dedup_key, priority=priority, source=source)
    return Push(channel="mp", recipient=owner.openid, kind="text", payload={"content": text},
                dedup_key=dedup_key, priority=priority, source=source)


def dedicated_agent(session: Session, owner: Owner) -> Staff | None:
    """The owner's dedicated agent (第六条 2) when their tier has one."""
    cfg = clock_config().get("dedicated_agents") or {}
    if owner.tier not in (cfg.get("tiers") or []) or owner.home is None:
        return None
    userid = (cfg.get("by_building") or {}).get(owner.home.building.code)
    return find_staff(session, userid) if userid else None


def team_members(session: Session, team: str, role: str | None = "staff") -> list[Staff]:
    q = select(Staff).where(Staff.team == team, Staff.active.is_(True))
    if role:
        q = q.where(Staff.role == role)
    rows = list(session.scalars(q.order_by(Staff.id)))
    if not rows and role:  # a team with only a supervisor still gets its tasks
        rows = list(session.scalars(select(Staff).where(Staff.team == team, Staff.active.is_(True)).order_by(Staff.id)))
    return rows


def by_role(session: Session, role: str, team: str | None = None) -> list[Staff]:
    rows = list(session.scalars(select(Staff).where(Staff.role == role, Staff.active.is_(True)).order_by(Staff.id)))
    same = [s for s in rows if team and s.team == team]
    return same or rows[:1] if rows else []


def recipients(staff: list[Staff]) -> str:
    return "|".join(s.userid for s in staff)


def task_card(to: str, task_id: str, title: str, desc: str, fields: list[tuple[str, str]],
              buttons: list[tuple[str, str]], dedup_key: str, source: str, priority: int = 3) -> Push:
    """A WeCom button_interaction card: the staff task and its actions."""
    card = {
        "card_type": "button_interaction",
        "source": {"desc": "管家·会员服务"},
        "main_title": {"title": title[:36], "desc": desc[:44]},
        "horizontal_content_list": [{"keyname": k[:5], "value": str(v)[:30]} for k, v in fields],
        "task_id": task_id,
        "button_list": [{"text": t, "style": 1 if i == 0 else 2, "key": k} for i, (t, k) in enumerate(buttons)],
    }
    return Push(channel="wecom", recipient=to, kind="template_card", payload={"card": card},
                dedup_key=dedup_key, priority=priority, source=source)


def card_done(response_code: str | None, recipient: str, label: str) -> Push | None:
    """Turn the clicked card's buttons into a single grey label for everyone
    who got the card (`recipient`: "a|b" as the card was sent, or one userid)."""
    if not response_code:
        return None
    return Push(channel="wecom", recipient=",".join(u for u in recipient.split("|") if u), kind="update_card",
                payload={"response_code": response_code, "button": {"replace_name": label}})


def staff_text(to: str, text: str, dedup_key: str | None, source: str, priority: int = 3) -> Push:
    return Push(channel="wecom", recipient=to, kind="text", payload={"content": text},
                dedup_key=dedup_key, priority=priority, source=source)
