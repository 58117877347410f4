"""The ticket rules as data: clocks.yaml (request classes, their clock
policies in the one clock format of handlers/clocks/policy.py, the survey) and
duty_roster.yaml (who takes what), loaded once and validated with errors
naming file, entry and field."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ground import rules
from handlers.clocks.policy import ClockSpec, PolicyError, parse_clock  # noqa: F401  (PolicyError: one error type)
from store.models import Staff

DATA = Path(__file__).resolve().parent.parent / "data"
CLOCKS_FILE = DATA / "clocks.yaml"
ROSTER_FILE = DATA / "duty_roster.yaml"
PRIORITIES = ("urgent", "important", "general")
EVENTS = ("created", "accepted", "on_the_way", "on_site", "progress", "completed", "result_sent",
          "called_back", "reopened", "closed")


@dataclass(frozen=True)
class ClassSpec:
    name: str
    label: str
    clocks: tuple[ClockSpec, ...]
    notify_all_on_duty: bool = False
    notify_head: bool = False
    promise: str = ""  # what the owner is told at intake


@dataclass(frozen=True)
class Policy:
    classes: dict[str, ClassSpec]
    kinds: dict[str, tuple[ClockSpec, ...]]
    all: tuple[ClockSpec, ...]
    repair_categories: frozenset[str]
    survey_words: dict[str, int]
    survey_reopen_at_or_below: int
    survey_ttl_hours: int
    owner_template_id: str | None = None  # OA template for owners outside the 48 h window (ground/limits.py)

    def clocks_for(self, priority: str, kind: str, home_repair: bool) -> list[ClockSpec]:
        """A ticket's clock policies: its class's, its kind's, and every ticket's."""
        specs = list(self.classes[priority].clocks)
        if kind == "complaint":
            specs += self.kinds.get("complaint", ())
        if home_repair:
            specs += self.kinds.get("home_repair", ())
        return specs + list(self.all)


@dataclass(frozen=True)
class Roster:
    categories: dict[str, str]
    teams: dict[str, dict]
    escalation: dict[str, str]
    callback: dict[str, str] = field(default_factory=dict)

    def team_for(self, category: str | None) -> str:
        return self.categories.get(category or "other") or self.categories.get("other", "customer_service")

    def on_duty(self, team: str, building: str | None) -> list[str]:
        by_building = self.teams[team]["on_duty"]
        return list(by_building.get(building or "*") or by_building.get("*") or [])

    def head(self, team: str) -> str:
        return self.teams[team].get("head") or self.escalation["supervisor"]

    def team_label(self, team: str) -> str:
        return self.teams.get(team, {}).get("label", team)

    def callback_for(self, building: str | None) -> str:
        return self.callback.get(building or "*") or self.callback.get("*") or self.escalation["supervisor"]


def _clock(raw: dict, where: str) -> ClockSpec:
    return parse_clock(raw, where, EVENTS)


def load_policy(path: Path = CLOCKS_FILE) -> Policy:
    return POLICY.get(path)


def _build_policy(data, src: rules.Source) -> Policy:
    data, name = data or {}, src.path.name
    classes = {}
    for prio in PRIORITIES:
        raw = (data.get("classes") or {}).get(prio)
        if raw is None:
            raise PolicyError(f"{name}: classes.{prio} is missing")
        clocks = tuple(_clock(c, f"{name}: classes.{prio}.clocks[{i}]") for i, c in enumerate(raw.get("clocks", [])))
        classes[prio] = ClassSpec(prio, raw.get("label", prio), clocks, bool(raw.get("notify_all_on_duty")),
                                  bool(raw.get("notify_head")), str(raw.get("promise") or ""))
    kinds = {k: tuple(_clock(c, f"{name}: kinds.{k}[{i}]") for i, c in enumerate(v or []))
             for k, v in (data.get("kinds") or {}).items()}
    all_ = tuple(_clock(c, f"{name}: all[{i}]") for i, c in enumerate(data.get("all") or []))
    survey = data.get("survey") or {}
    words = survey.get("words") or {}
    for w, score in words.items():
        if not isinstance(score, int) or not 1 <= score <= 5:
            raise PolicyError(f"{name}: survey.words.{w}: score must be 1-5")
    return Policy(classes, kinds, all_, frozenset(data.get("repair_categories") or ()), dict(words),
                  int(survey.get("reopen_at_or_below", 2)), int(survey.get("ttl_hours", 72)),
                  (data.get("owner_notice") or {}).get("template_id") or None)


def load_roster(path: Path = ROSTER_FILE) -> Roster:
    return ROSTER.get(path)


def _build_roster(data, src: rules.Source) -> Roster:
    data, name = data or {}, src.path.name
    teams = data.get("teams") or {}
    for team, spec in teams.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("on_duty"), dict):
            raise PolicyError(f"{name}: teams.{team}: field on_duty (building -> [userids]) is missing")
        for b, people in spec["on_duty"].items():
            if not isinstance(people, list) or not people:
                raise PolicyError(f"{name}: teams.{team}.on_duty.{b}: a non-empty list of userids is needed")
    cats = data.get("categories") or {}
    for cat, team in cats.items():
        if team not in teams:
            raise PolicyError(f"{name}: categories.{cat}: unknown team '{team}'")
    esc = data.get("escalation") or {}
    for role in ("supervisor", "manager"):
        if not esc.get(role):
            raise PolicyError(f"{name}: escalation.{role} is missing")
    return Roster(dict(cats), teams, dict(esc), dict(data.get("callback") or {}))


def home_repair(ticket) -> bool:
    """O11 applies to repairs inside a home (not public facilities)."""
    return ticket.kind == "repair" and ticket.category != "facility" and bool(ticket.room)


def specs_for(ticket) -> list[ClockSpec]:
    """The clock policies of `ticket` (store.models.Ticket)."""
    return policy().clocks_for(ticket.priority, ticket.kind, home_repair(ticket))


def spec_for(ticket, clock_id: str) -> ClockSpec | None:
    return next((s for s in specs_for(ticket) if s.id == clock_id), None)


POLICY = rules.RuleFile(CLOCKS_FILE, build=_build_policy)
ROSTER = rules.RuleFile(ROSTER_FILE, build=_build_roster)


def policy() -> Policy:
    return POLICY.get()


def roster() -> Roster:
    return ROSTER.get()


def check_roster_staff(session) -> None:
    """Every userid in duty_roster.yaml must be an active staff member (run after
    the community is loaded, e.g. by `guanjia demo-data`): a card sent to an
    unknown userid would reach nobody and the clocks would break unseen."""
    from sqlalchemy import select

    r = roster()
    known = set(session.scalars(select(Staff.userid).where(Staff.active.is_(True))))
    where: list[tuple[str, str]] = [(f"escalation.{k}", v) for k, v in r.escalation.items()]
    where += [(f"callback.{b}", u) for b, u in r.callback.items()]
    for team, spec in r.teams.items():
        if spec.get("head"):
            where.append((f"teams.{team}.head", spec["head"]))
        where += [(f"teams.{team}.on_duty.{b}", u) for b, people in spec["on_duty"].items() for u in people]
    unknown = [f"{w}: {u}" for w, u in where if u not in known]
    if unknown:
        raise PolicyError(f"{ROSTER_FILE.name}: unknown or inactive staff userid(s): " + "; ".join(unknown))
