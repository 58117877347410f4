"""The member-service catalogue (handlers/data/services.yaml), validated on load."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import yaml

from handlers.membership.rules import RulesError, load_rules

SERVICES_FILE = Path(__file__).resolve().parent.parent / "data" / "services.yaml"
PERIODS = ("week", "month", "quarter", "year")
PERIOD_NAMES = {"week": "每周", "month": "每月", "quarter": "每季度", "year": "每年"}


@dataclass(frozen=True)
class Quota:
    count: int
    per: str


@dataclass(frozen=True)
class Service:
    key: str
    name: str
    keywords: tuple[str, ...]
    tiers: tuple[str, ...]
    price_fen: int | None
    duration_minutes: int
    capacity: int
    team: str
    location: str
    place: str | None = None
    note: str | None = None
    hours: tuple[str, str] = ("08:00", "20:00")
    lead_days: int = 0
    quota: dict[str, Quota] = field(default_factory=dict)
    discount: dict[str, float] = field(default_factory=dict)

    def price_for(self, tier: str) -> tuple[int | None, float]:
        d = self.discount.get(tier, 1.0)
        return (None if self.price_fen is None else round(self.price_fen * d)), d


def period_key(per: str, day: date) -> str:
    if per == "week":
        y, w, _ = day.isocalendar()
        return f"{y}-W{w:02d}"
    if per == "month":
        return f"{day.year}-{day.month:02d}"
    if per == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return str(day.year)


def parse_catalogue(data: dict, path: Path | str = SERVICES_FILE) -> dict[str, Service]:
    tiers = set(load_rules().order)
    out: dict[str, Service] = {}
    default_hours = _hours(data.get("default_hours", ["08:00", "20:00"]), f"{path}: default_hours")
    raw = data.get("services")
    if not isinstance(raw, dict) or not raw:
        raise RulesError(f"{path}: missing field 'services'")
    for key, s in raw.items():
        w = f"{path}: services.{key}"
        if not isinstance(s, dict):
            raise RulesError(f"{w}: should be a mapping")
        for f in ("name", "keywords", "tiers", "duration_minutes", "capacity", "team", "location"):
            if f not in s:
                raise RulesError(f"{w}: missing field '{f}'")
        bad = set(s["tiers"]) - tiers
        if bad:
            raise RulesError(f"{w}: field 'tiers' names unknown tiers {sorted(bad)}")
        if not isinstance(s["capacity"], int) or s["capacity"] < 1:
            raise RulesError(f"{w}: field 'capacity' should be a positive integer")
        if s["location"] not in ("home", "venue", "ask"):
            raise RulesError(f"{w}: field 'location' should be home, venue or ask")
        if s["location"] == "venue" and not s.get("place"):
            raise RulesError(f"{w}: field 'place' is required for a venue")
        quota = {}
        for tier, q in (s.get("quota") or {}).items():
            if tier not in tiers or not isinstance(q, dict) or q.get("per") not in PERIODS \
                    or not isinstance(q.get("count"), int) or q["count"] < 1:
                raise RulesError(f"{w}: quota.{tier}: should be {{count: n>=1, per: week|month|quarter|year}}")
            quota[tier] = Quota(q["count"], q["per"])
        discount = {}
        for tier, d in (s.get("discount") or {}).items():
            if tier not in tiers or not isinstance(d, (int, float)) or not 0 < d <= 1:
                raise RulesError(f"{w}: discount.{tier}: should be a number in (0, 1]")
            discount[tier] = float(d)
        price = s.get("price")
        if price is not None and (not isinstance(price, (int, float)) or price < 0):
            raise RulesError(f"{w}: field 'price' should be a non-negative number or null")
        lead = s.get("lead_days", 0)
        if not isinstance(lead, int) or lead < 0:
            raise RulesError(f"{w}: field 'lead_days' should be a non-negative integer")
        hours = _hours(s["hours"], f"{w}: field 'hours'") if "hours" in s else default_hours
        out[key] = Service(key=key, name=s["name"], keywords=tuple(s["keywords"]), tiers=tuple(s["tiers"]),
                           price_fen=None if price is None else round(price * 100),
                           duration_minutes=int(s["duration_minutes"]), capacity=s["capacity"], team=s["team"],
                           location=s["location"], place=s.get("place"), note=s.get("note"),
                           quota=quota, discount=discount, hours=hours, lead_days=lead)
    return out


def _hours(v, where: str) -> tuple[str, str]:
    import re

    if (not isinstance(v, (list, tuple)) or len(v) != 2
            or not all(isinstance(x, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", x) for x in v) or v[0] >= v[1]):
        raise RulesError(f"{where} should be [\"HH:MM\", \"HH:MM\"], start before end, got {v!r}")
    return v[0], v[1]


@lru_cache(maxsize=2)
def _load(path: str, mtime: float) -> dict[str, Service]:
    return parse_catalogue(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}, path)


def catalogue(path: Path = SERVICES_FILE) -> dict[str, Service]:
    return _load(str(path), path.stat().st_mtime)


def find_service(text: str) -> Service | None:
    """The service a text names (longest keyword wins: 家电维修 over 家电)."""
    best, best_len = None, 0
    for svc in catalogue().values():
        for kw in (svc.name, *svc.keywords):
            if kw in text and len(kw) > best_len:
                best, best_len = svc, len(kw)
    return best
