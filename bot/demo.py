"""`guanjia demo-data`: the demo community from demo_community.yaml, idempotent.

Capabilities with their own demo data (duty roster, spend ledger...) declare a
loader (`Capability.demo`), run after the community exists.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy import select

from bot.console.auth import create_user
from handlers import load_capabilities
from handlers.capability import run_all
from store.db import session_scope
from store.models import Building, ConsoleUser, Group, GroupMember, Home, Owner, Staff

DEMO_FILE = Path(__file__).with_name("demo_community.yaml")


def _upsert(session, model, key: str, values: dict):
    row = session.scalar(select(model).where(getattr(model, key) == values[key]))
    if row is None:
        row = model(**values)
        session.add(row)
    else:
        for k, v in values.items():
            setattr(row, k, v)
    session.flush()
    return row


def load_demo(path: Path = DEMO_FILE) -> str:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    with session_scope() as s:
        buildings = {b["code"]: _upsert(s, Building, "code", b) for b in data["buildings"]}
        homes = {}
        for h in data["homes"]:
            h = dict(h)
            h["building_id"] = buildings[h.pop("building")].id
            homes[h["room"]] = _upsert(s, Home, "room", h)
        for o in data["owners"]:
            o = dict(o)
            o["home_id"] = homes[o.pop("room")].id
            _upsert(s, Owner, "openid", o)
        staff = {m["userid"]: _upsert(s, Staff, "userid", m) for m in data["staff"]}
        for g in data["groups"]:
            g = dict(g)
            members = g.pop("members", [])
            g["staff_admin_id"] = staff[g.pop("staff_admin")].id
            if "building" in g:
                g["building_id"] = buildings[g.pop("building")].id
            group = _upsert(s, Group, "chat_id", g)
            for m in members:
                owner = s.scalar(select(Owner).where(Owner.external_userid == m["id"]))
                row = s.scalar(select(GroupMember).where(GroupMember.group_id == group.id,
                                                         GroupMember.member_id == m["id"]))
                if row is None:
                    s.add(GroupMember(group_id=group.id, member_id=m["id"], owner_id=owner.id if owner else None,
                                      role=m.get("role", "member")))
        for cap in load_capabilities():
            run_all(cap.demo_loaders, s)
    return (f"demo community loaded: {len(data['buildings'])} buildings, {len(data['owners'])} owners, "
            f"{len(data['staff'])} staff, {len(data['groups'])} groups")


DEMO_MANAGER = "demo"  # the console login `scripts/run.sh` prints once, on the demo community only
DEMO_MANAGER_STAFF = "jingli_lin"  # the demo community's manager (bot/demo_community.yaml)


def ensure_demo_manager() -> str | None:
    """On a fresh demo install, a console manager so the first sign-in works:
    created only when the demo community is loaded and nobody has a console
    login yet. Returns the password (random; only its hash is stored) to print
    once, or None when there was nothing to do."""
    import secrets

    with session_scope() as s:
        if s.scalar(select(ConsoleUser.id).limit(1)) is not None:
            return None
        if s.scalar(select(Staff.id).where(Staff.userid == DEMO_MANAGER_STAFF)) is None:
            return None  # not the demo community: real deployments add users with `guanjia users add`
        password = secrets.token_urlsafe(9)
        create_user(s, DEMO_MANAGER, "林经理（演示）", "manager", password, DEMO_MANAGER_STAFF)
    return password
