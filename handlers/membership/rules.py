"""The membership rules of seed 000, read from handlers/data/tiers.yaml.

Pure functions over an owner's facts (tier, since, move-in date, spend): the
store-facing code in `service.py` feeds them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ground import rules
from ground.rules import RulesError  # noqa: F401  (the one error type; imported from here by bookings)

DATA = Path(__file__).resolve().parent.parent / "data"
TIERS_FILE = DATA / "tiers.yaml"


@dataclass(frozen=True)
class Tier:
    name: str
    keep_spend_fen: int
    benefits: tuple[str, ...]
    upgrade_from: str | None = None
    upgrade_spend_fen: int | None = None
    upgrade_tenure_years: int | None = None
    special_contribution: bool = False


@dataclass(frozen=True)
class TierRules:
    order: tuple[str, ...]
    tiers: dict[str, Tier]
    default_tier: str
    spend_window_months: int
    upgrade_spend_basis: str
    downgrade_notice_days: int
    downgrade_needs_months_in_tier: int
    suspend_default_days: int

    def rank(self, tier: str) -> int:
        return self.order.index(tier) if tier in self.order else 0

    def next_tier(self, tier: str) -> Tier | None:
        i = self.rank(tier)
        if i + 1 < len(self.order):
            nxt = self.tiers[self.order[i + 1]]
            if nxt.upgrade_from in (None, tier):
                return nxt
        return None

    def lower_tier(self, tier: str) -> str | None:
        i = self.rank(tier)
        return self.order[i - 1] if i > 0 else None


_SPEND = rules.Number(min=0)
SCHEMA = rules.Record(
    order=rules.ListOf(rules.Text(), min=1),
    tiers=rules.MapOf(rules.Record(
        keep_spend=rules.Opt(_SPEND, 0),
        benefits=rules.ListOf(rules.Text()),
        upgrade_from=rules.Opt(rules.Text()),
        upgrade=rules.Opt(rules.Record(spend=rules.Opt(_SPEND), tenure_years=rules.Opt(_SPEND),
                                       special_contribution=rules.Opt(rules.Bool(), False)), {}),
    )),
    default_tier=rules.Opt(rules.Text()),
    spend_window_months=rules.Opt(rules.Int(min=1), 12),
    upgrade_spend_basis=rules.Opt(rules.OneOf("since_tier", "all", "window"), "since_tier"),
    downgrade_notice_days=rules.Opt(rules.Int(min=0), 30),
    downgrade_needs_months_in_tier=rules.Opt(rules.Int(min=0), 12),
    sanctions=rules.Opt(rules.Record(suspend=rules.Opt(rules.Record(
        default_days=rules.Opt(rules.Int(min=1), 90)), {})), {}),
)


def _build(data: dict, src: rules.Source) -> TierRules:
    order = tuple(data["order"])
    tiers: dict[str, Tier] = {}
    for name in order:
        if name not in data["tiers"]:
            raise src.fail(f"tiers.{name}", "listed in 'order' but not defined")
        t = data["tiers"][name]
        if t["upgrade_from"] is not None and t["upgrade_from"] not in order:
            raise src.fail(f"tiers.{name}", f"field 'upgrade_from' names unknown tier {t['upgrade_from']!r}")
        up = t["upgrade"]
        tiers[name] = Tier(
            name=name, keep_spend_fen=round(t["keep_spend"] * 100), benefits=tuple(t["benefits"]),
            upgrade_from=t["upgrade_from"],
            upgrade_spend_fen=round(up["spend"] * 100) if up["spend"] is not None else None,
            upgrade_tenure_years=up["tenure_years"],
            special_contribution=up["special_contribution"])
    default = data["default_tier"] or order[0]
    if default not in order:
        raise src.fail("", f"field 'default_tier' names unknown tier {default!r}")
    return TierRules(order=order, tiers=tiers, default_tier=default,
                     spend_window_months=data["spend_window_months"],
                     upgrade_spend_basis=data["upgrade_spend_basis"],
                     downgrade_notice_days=data["downgrade_notice_days"],
                     downgrade_needs_months_in_tier=data["downgrade_needs_months_in_tier"],
                     suspend_default_days=data["sanctions"]["suspend"]["default_days"])


TIERS = rules.RuleFile(TIERS_FILE, schema=SCHEMA, build=_build)


def parse_rules(data: dict, path: Path | str = TIERS_FILE) -> TierRules:
    """Validate and build already-parsed tiers data (errors name `path`)."""
    src = rules.Source(path)
    return _build(rules.validate(data or {}, SCHEMA, src), src)


def load_rules(path: Path = TIERS_FILE) -> TierRules:
    """The rules, re-read when the file changes (no restart to change a threshold)."""
    return TIERS.get(path)


def tier_names(path: Path = TIERS_FILE) -> tuple[str, ...]:
    """Every tier, lowest first (tiers.yaml `order`): the one list the API, the
    console and the importer accept."""
    return load_rules(path).order


def upper_tiers_pattern(path: Path = TIERS_FILE) -> str:
    """The tiers one can be upgraded to, as a regex alternation ("银卡|金卡"),
    built from tiers.yaml so a phrase names whatever tiers the file has.
    Command patterns are built at import: a renamed tier needs a restart."""
    order = load_rules(path).order
    return "|".join(re.escape(t) for t in sorted(order[1:], key=len, reverse=True))


# --- dates ---------------------------------------------------------------------

def add_months(d: date, months: int) -> date:
    """Same day n months later, clamped to the month's end (Jan 31 + 1 -> Feb 28)."""
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    import calendar

    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def anniversary(d: date, years: int) -> date:
    """The day `years` full years after d (Feb 29 -> Mar 1 in common years)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return date(d.year + years, 3, 1)


def window_start(today: date, months: int) -> date:
    """First day inside the rolling window ending today: 12 months up to and including today."""
    return add_months(today, -months) + (date.resolution)


# --- decisions -----------------------------------------------------------------

@dataclass
class Eligibility:
    """What the owner lacks for `target` (None: already at the top)."""

    current: str
    target: str | None
    met: list[str] = field(default_factory=list)  # spend / tenure
    spend_fen: int = 0
    spend_missing_fen: int | None = None
    tenure_due: date | None = None  # the day the tenure rule is met
    special_contribution: bool = False

    @property
    def eligible(self) -> bool:
        return bool(self.met)


def eligibility(rules: TierRules, tier: str, move_in: date | None, upgrade_spend_fen: int,
                today: date) -> Eligibility:
    nxt = rules.next_tier(tier)
    e = Eligibility(current=tier, target=nxt.name if nxt else None, spend_fen=upgrade_spend_fen)
    if nxt is None:
        return e
    e.special_contribution = nxt.special_contribution
    if nxt.upgrade_spend_fen is not None:
        e.spend_missing_fen = max(0, nxt.upgrade_spend_fen - upgrade_spend_fen)
        if upgrade_spend_fen >= nxt.upgrade_spend_fen:
            e.met.append("spend")
    if nxt.upgrade_tenure_years is not None and move_in is not None:
        e.tenure_due = anniversary(move_in, nxt.upgrade_tenure_years)
        if today >= e.tenure_due:
            e.met.append("tenure")
    return e


def keeps_tier(rules: TierRules, tier: str, tier_since: date | None, spend_window_fen: int,
               today: date) -> bool:
    """False when the 12-month spend is below the tier's keep threshold and the
    tier has been held long enough to be judged on it."""
    t = rules.tiers.get(tier)
    if t is None or rules.lower_tier(tier) is None or t.keep_spend_fen <= 0:
        return True
    if tier_since is not None and today < add_months(tier_since, rules.downgrade_needs_months_in_tier):
        return True
    return spend_window_fen >= t.keep_spend_fen


def yuan(fen: int | None) -> str:
    if fen is None:
        return "面议"
    return f"{fen / 100:,.0f}" if fen % 100 == 0 else f"{fen / 100:,.2f}"
