"""The member-service catalogue (handlers/data/services.yaml), validated on load."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
import re
from pathlib import Path

from ground import rules
from handlers.membership.rules import load_rules

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


_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _hours_ok(v):
    if (not isinstance(v, (list, tuple)) or len(v) != 2
            or not all(isinstance(x, str) and _HHMM.fullmatch(x) for x in v) or v[0] >= v[1]):
        raise ValueError(f"should be [\"HH:MM\", \"HH:MM\"], start before end, got {v!r}")
    return (v[0], v[1])


_HOURS = rules.Custom(_hours_ok, "[\"HH:MM\", \"HH:MM\"]")
SCHEMA = rules.Record(
    default_hours=rules.Opt(_HOURS, ("08:00", "20:00")),
    services=rules.MapOf(rules.Record(
        name=rules.Text(), keywords=rules.ListOf(rules.Text()), tiers=rules.ListOf(rules.Text()),
        duration_minutes=rules.Int(min=1), capacity=rules.Int(min=1), team=rules.Text(),
        location=rules.OneOf("home", "venue", "ask"),
        place=rules.Opt(rules.Text()), note=rules.Opt(rules.Text()),
        price=rules.Opt(rules.Number(min=0)), lead_days=rules.Opt(rules.Int(min=0), 0),
        hours=rules.Opt(_HOURS), quota=rules.Opt(rules.MapOf(rules.AnyValue()), {}),
        discount=rules.Opt(rules.MapOf(rules.AnyValue()), {}),
    ), min=1),
)


def _quota(tiers: set[str], raw: dict, w: str, src: rules.Source) -> dict[str, Quota]:
    quota = {}
    for tier, q in raw.items():
        if tier not in tiers or not isinstance(q, dict) or q.get("per") not in PERIODS \
                or not isinstance(q.get("count"), int) or q["count"] < 1:
            raise src.fail(w, f"quota.{tier}: should be {{count: n>=1, per: week|month|quarter|year}}")
        quota[tier] = Quota(q["count"], q["per"])
    return quota


def _discount(tiers: set[str], raw: dict, w: str, src: rules.Source) -> dict[str, float]:
    for tier, d in raw.items():
        if tier not in tiers or isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 < d <= 1:
            raise src.fail(w, f"discount.{tier}: should be a number in (0, 1]")
    return {tier: float(d) for tier, d in raw.items()}


def _build(data: dict, src: rules.Source) -> dict[str, Service]:
    tiers = set(load_rules().order)
    out: dict[str, Service] = {}
    for key, s in data["services"].items():
        w = f"services.{key}"
        bad = set(s["tiers"]) - tiers
        if bad:
            raise src.fail(w, f"field 'tiers' names unknown tiers {sorted(bad)}")
        if s["location"] == "venue" and not s["place"]:
            raise src.fail(w, "field 'place' is required for a venue")
        price = s["price"]
        out[key] = Service(key=key, name=s["name"], keywords=tuple(s["keywords"]), tiers=tuple(s["tiers"]),
                           price_fen=None if price is None else round(price * 100),
                           duration_minutes=s["duration_minutes"], capacity=s["capacity"], team=s["team"],
                           location=s["location"], place=s["place"], note=s["note"],
                           quota=_quota(tiers, s["quota"], w, src), discount=_discount(tiers, s["discount"], w, src),
                           hours=s["hours"] or data["default_hours"], lead_days=s["lead_days"])
    return out


SERVICES = rules.RuleFile(SERVICES_FILE, schema=SCHEMA, build=_build)


def parse_catalogue(data: dict, path: Path | str = SERVICES_FILE) -> dict[str, Service]:
    """Validate and build already-parsed catalogue data (errors name `path`)."""
    src = rules.Source(path)
    return _build(rules.validate(data or {}, SCHEMA, src), src)


def catalogue(path: Path = SERVICES_FILE) -> dict[str, Service]:
    return SERVICES.get(path)


def find_service(text: str) -> Service | None:
    """The service a text names (longest keyword wins: 家电维修 over 家电)."""
    best, best_len = None, 0
    for svc in catalogue().values():
        for kw in (svc.name, *svc.keywords):
            if kw in text and len(kw) > best_len:
                best, best_len = svc, len(kw)
    return best
