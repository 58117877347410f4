"""Demo spend ledger for `guanjia demo-data` (bot/demo.py DEMO_LOADERS).

Amounts are spread over the months before today so the 12-month rules have
something to show: one owner a little short of 银卡, one over it, members
below their keep threshold, one 银卡 past the 金卡 spend.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ground import clock
from handlers.membership.service import add_spend, local_day
from store.models import Owner, SpendEntry

# openid -> [(days ago, yuan, category)]
DEMO_SPEND: dict[str, list[tuple[int, float, str]]] = {
    "o_wang": [(300, 5000, "banquet"), (120, 4000, "clubhouse"), (30, 3000, "housekeeping")],
    "o_li": [(200, 1200, "gym"), (60, 800, "pool")],
    "o_zhang": [(250, 2500, "clubhouse"), (40, 2000, "housekeeping")],
    "o_liu": [(280, 3000, "appliance_repair"), (20, 1800, "gym")],
    "o_chen": [(150, 3200, "clubhouse"), (10, 2000, "housekeeping")],
    "o_zhao": [(330, 6000, "banquet"), (90, 3000, "pool")],
    "o_huang": [(310, 9000, "clubhouse"), (100, 7000, "housekeeping")],
    "o_xu": [(180, 2000, "gym"), (45, 1500, "pet_care")],
}


def load_demo_spend(session: Session) -> None:
    """Idempotent: owners that already have demo entries are left alone."""
    today = local_day(clock.now())
    for openid, entries in DEMO_SPEND.items():
        owner = session.scalar(select(Owner).where(Owner.openid == openid))
        if owner is None or session.scalar(select(SpendEntry.id).where(SpendEntry.owner_id == owner.id,
                                                                       SpendEntry.entered_by == "demo")):
            continue
        for days_ago, yuan, category in entries:
            add_spend(session, owner, yuan, today - timedelta(days=days_ago), category, entered_by="demo")
