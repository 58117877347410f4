"""Who sees which tickets and owners: the one rule for the console, the admin
API and the WeCom commands (issue 13, item 7; the rule and its reasons are in
handlers/data/scope.yaml).

    viewer = scope.for_principal(session, principal)      # console, API
    viewer = scope.for_userid(session, msg.sender)        # WeCom commands
    stmt = scope.tickets(stmt, viewer)                     # a select over Ticket
    scope.can_see_ticket(viewer, ticket)

Nothing here writes; the callers decide what "not visible" looks like (a 404,
a polite reply), so a ticket outside one's scope is indistinguishable from a
missing one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from ground import rules
from store.models import Building, Consultation, Group, Home, Owner, Staff
from store.models.tickets import Ticket

SCOPE_FILE = Path(__file__).resolve().parent / "data" / "scope.yaml"
ROLES = ("staff", "supervisor", "manager")
TEAMS = ("customer_service", "repair", "security", "cleaning", "management")
LIKE_ESCAPE = "\\"


_TEAM = rules.OneOf(*TEAMS)
SCHEMA = rules.Record(departments=rules.MapOf(rules.ListOf(_TEAM, min=1), key=_TEAM, min=1))
SCOPE = rules.RuleFile(SCOPE_FILE, schema=SCHEMA,
                       build=lambda data, src: {t: frozenset(c) for t, c in data["departments"].items()})


def departments(path: Path = SCOPE_FILE) -> dict[str, frozenset[str]]:
    """scope.yaml's departments, validated: errors name the file, entry and field."""
    return SCOPE.get(path)


@dataclass(frozen=True)
class Viewer:
    role: str  # staff / supervisor / manager
    userid: str | None = None  # WeCom userid: "what is assigned to them"
    teams: frozenset[str] = field(default_factory=frozenset)  # a supervisor's department
    buildings: frozenset[str] = field(default_factory=frozenset)  # building codes (tickets.building)
    building_ids: frozenset[int] = field(default_factory=frozenset)
    admin_groups: frozenset[str] = field(default_factory=frozenset)  # chat_ids of the groups they administer

    @property
    def sees_all(self) -> bool:
        return self.role == "manager"

    @property
    def sees_full_phones(self) -> bool:
        """Owners' numbers in full: managers only (RULES.md: owner records need a manager)."""
        return self.role == "manager"


EVERYTHING = Viewer("manager")
NOTHING = Viewer("staff")


def for_staff(session: Session, staff: Staff | None, role: str | None = None) -> Viewer:
    """The viewer for a staff record; `role` overrides staff.role (a console user's role)."""
    role = role or (staff.role if staff else "staff")
    if role not in ROLES:
        role = "staff"
    if role == "manager":
        return EVERYTHING
    if staff is None:
        return NOTHING  # a login not linked to a staff record administers no building
    rows = session.execute(select(Building.id, Building.code).join(Group, Group.building_id == Building.id)
                           .where(Group.staff_admin_id == staff.id, Group.kind == "building")).all()
    teams = departments().get(staff.team, frozenset({staff.team})) if role == "supervisor" else frozenset()
    admin = frozenset(session.scalars(select(Group.chat_id).where(Group.staff_admin_id == staff.id)))
    return Viewer(role, staff.userid, teams, frozenset(r.code for r in rows), frozenset(r.id for r in rows), admin)


def for_userid(session: Session, userid: str) -> Viewer:
    """A WeCom sender: an active staff member's scope, else nothing."""
    staff = session.scalar(select(Staff).where(Staff.userid == userid, Staff.active.is_(True)))
    return for_staff(session, staff)


def for_principal(session: Session, who: Any) -> Viewer:
    """A console or API principal (bot.console.auth.Principal): its role, its staff link."""
    if who.role == "manager":
        return EVERYTHING
    staff = session.get(Staff, who.staff_id) if who.staff_id else None
    return for_staff(session, staff, who.role)


# --- tickets ------------------------------------------------------------------------------------

def _ticket_model():
    return Ticket


def ticket_clause(viewer: Viewer):
    """A WHERE clause over Ticket for the viewer; None = no restriction."""
    if viewer.sees_all:
        return None
    Ticket = _ticket_model()
    conds = []
    if viewer.buildings:
        conds.append(Ticket.building.in_(sorted(viewer.buildings)))
    if viewer.userid:
        conds.append(Ticket.assignee == viewer.userid)
    if viewer.teams:
        conds.append(Ticket.team.in_(sorted(viewer.teams)))
    return or_(*conds) if conds else false()


def tickets(stmt, viewer: Viewer):
    """`stmt` (a select over Ticket) limited to what the viewer may see."""
    clause = ticket_clause(viewer)
    return stmt if clause is None else stmt.where(clause)


def can_see_ticket(viewer: Viewer, ticket) -> bool:
    if viewer.sees_all:
        return True
    return bool((ticket.building and ticket.building in viewer.buildings)
                or (viewer.userid and ticket.assignee == viewer.userid)
                or (ticket.team and ticket.team in viewer.teams))


def can_act_on_ticket(viewer: Viewer, ticket) -> bool:
    """Seeing it, or being one of those its work card went to (they must be able to take it)."""
    return can_see_ticket(viewer, ticket) or bool(viewer.userid and viewer.userid in (ticket.notified or []))


# --- owners -------------------------------------------------------------------------------------

def owner_clause(viewer: Viewer):
    """A WHERE clause over Owner; None = no restriction."""
    if viewer.sees_all:
        return None
    conds = []
    if viewer.building_ids:
        conds.append(Owner.home_id.in_(select(Home.id).where(Home.building_id.in_(sorted(viewer.building_ids)))))
    clause = ticket_clause(viewer)
    Ticket = _ticket_model()
    if clause is not None and (viewer.userid or viewer.teams):
        # The owners of the work they may see (assigned to them, their department's).
        conds.append(Owner.id.in_(select(Ticket.owner_id).where(clause, Ticket.owner_id.is_not(None))))
    return or_(*conds) if conds else false()


SERVICE_TEAM = "customer_service"  # reviews bookings and applications (member_clocks.yaml review_team)


def of_visible_owners(owner_id_column, viewer: Viewer):
    """A WHERE clause for rows that belong to an owner (bookings, applications): only
    those of owners the viewer may see; None = no restriction. A supervisor whose
    department covers customer service (who reviews every owner's requests) sees all."""
    if SERVICE_TEAM in viewer.teams:
        return None
    clause = owner_clause(viewer)
    if clause is None:
        return None
    return owner_id_column.in_(select(Owner.id).where(clause))


def scoped_by_owner(stmt, owner_id_column, viewer: Viewer):
    clause = of_visible_owners(owner_id_column, viewer)
    return stmt if clause is None else stmt.where(clause)


def can_see_owner(session: Session, viewer: Viewer, owner: Owner) -> bool:
    clause = owner_clause(viewer)
    if clause is None:
        return True
    return session.scalar(select(Owner.id).where(Owner.id == owner.id, clause)) is not None


# --- groups and their moderation cases ------------------------------------------------------------

GROUPS_TEAM = "customer_service"  # the department that runs the owners' groups (a supervisor of it sees all)


def group_clause(viewer: Viewer):
    """A WHERE clause over Group; None = no restriction. Staff see the groups they
    administer and their buildings' groups; a supervisor whose department runs the
    owners' groups sees them all."""
    if viewer.sees_all or GROUPS_TEAM in viewer.teams:
        return None
    conds = []
    if viewer.admin_groups:
        conds.append(Group.chat_id.in_(sorted(viewer.admin_groups)))
    if viewer.building_ids:
        conds.append(Group.building_id.in_(sorted(viewer.building_ids)))
    return or_(*conds) if conds else false()


def of_visible_groups(chat_id_column, viewer: Viewer):
    """A WHERE clause for rows that belong to a group by chat_id (moderation cases,
    admissions); None = no restriction."""
    clause = group_clause(viewer)
    return None if clause is None else chat_id_column.in_(select(Group.chat_id).where(clause))


def scoped_by_group(stmt, chat_id_column, viewer: Viewer):
    clause = of_visible_groups(chat_id_column, viewer)
    return stmt if clause is None else stmt.where(clause)


def can_see_group(session: Session, viewer: Viewer, chat_id: str | None) -> bool:
    clause = group_clause(viewer)
    if clause is None:
        return True
    return bool(chat_id) and session.scalar(select(Group.id).where(Group.chat_id == chat_id, clause)) is not None


# --- consultations (handoffs to a person, handlers/consultations/) ------------------------------

CONSULTATION_TEAM = SERVICE_TEAM  # who answers them


def consultation_clause(viewer: Viewer):
    """A WHERE clause over Consultation; None = no restriction. Staff see the cases of
    their buildings' owners, the ones they hold and the ones whose card reached them;
    a supervisor whose department answers consultations sees them all."""
    if viewer.sees_all or CONSULTATION_TEAM in viewer.teams:
        return None
    conds = []
    owners = of_visible_owners(Consultation.owner_id, viewer)
    if owners is not None:
        conds.append(owners)
    if viewer.userid:
        conds.append(Consultation.holder == viewer.userid)
        # recipients is "a|b|c": match a whole userid, not a prefix of a longer one
        conds.append(("|" + Consultation.recipients + "|").like(like_contains(f"|{viewer.userid}|"),
                                                                 escape=LIKE_ESCAPE))
    return or_(*conds) if conds else false()


def consultations(stmt, viewer: Viewer):
    clause = consultation_clause(viewer)
    return stmt if clause is None else stmt.where(clause)


def can_see_consultation(session: Session, viewer: Viewer, case) -> bool:
    clause = consultation_clause(viewer)
    if clause is None:
        return True
    return session.scalar(select(Consultation.id).where(Consultation.id == case.id, clause)) is not None


# --- search -------------------------------------------------------------------------------------

def like_contains(text: str) -> str:
    """A LIKE pattern matching `text` literally anywhere (use with escape=LIKE_ESCAPE):
    a search for "%" or "_" must not match everyone."""
    escaped = text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")
    return f"%{escaped}%"


def owner_search_clause(text: str):
    """Name, phone or room containing `text` literally."""
    like = like_contains(text)
    return or_(Owner.name.like(like, escape=LIKE_ESCAPE), Owner.phone.like(like, escape=LIKE_ESCAPE),
               Home.room.like(like, escape=LIKE_ESCAPE))
