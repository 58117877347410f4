"""Owners' phone numbers as staff see them (issue 13, item 8).

Staff and supervisors see numbers masked (138****0002) wherever a ticket shows
them: its contact, its history (`contact=...`), its content (a neighbour's
number copied from a flagged group message). Managers see them in full. The
number itself is revealed on purpose, one ticket at a time, by someone allowed
to (`may_reveal`), and every reveal is an audit row (`phone.reveal`).

The masking is the moderation capability's (`handlers.groups.moderation.mask`,
non-strict: phones, ID and card numbers, e-mails), so the bot has one idea of
what personal data looks like.
"""
from __future__ import annotations

from typing import Any

from handlers.groups.moderation import mask
from handlers.scope import Viewer, can_see_ticket

# Ticket attributes that may carry an owner's (or a neighbour's) number.
TICKET_TEXT_FIELDS = ("content", "contact_phone", "result_note", "survey_comment")


def mask_text(text: str | None, strict: bool = False) -> str | None:
    """`strict`: also any run of 5+ digits (for text already cut short, where a cut
    number no longer looks like a phone)."""
    if not text:
        return text
    return mask(str(text), strict=strict)


def excerpt(text: str | None, limit: int) -> str:
    """The first `limit` characters of `text` as staff may read them: masked BEFORE
    cutting, so a number cut in half at the end is not left readable."""
    return (mask_text(text) or "")[:limit]


def mask_value(value: Any) -> Any:
    """Strings masked, dicts and lists walked (ticket event details)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    return value


def for_viewer(viewer: Viewer, value: Any) -> Any:
    return value if viewer.sees_full_phones else mask_value(value)


class MaskedView:
    """A read-only stand-in for an ORM row in a template: the listed fields masked,
    everything else passed through. (Never assign a masked value to the row itself:
    the session would write it back.)"""

    def __init__(self, row: Any, fields: tuple[str, ...] = TICKET_TEXT_FIELDS, detail: bool = False) -> None:
        object.__setattr__(self, "_row", row)
        object.__setattr__(self, "_fields", fields + (("detail",) if detail else ()))

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._row, name)
        return mask_value(value) if name in self._fields else value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("MaskedView is read-only")


def ticket_view(viewer: Viewer, ticket: Any) -> Any:
    return ticket if viewer.sees_full_phones else MaskedView(ticket)


def event_views(viewer: Viewer, events: list) -> list:
    return events if viewer.sees_full_phones else [MaskedView(e, (), detail=True) for e in events]


def may_reveal(viewer: Viewer, ticket: Any) -> bool:
    """Managers; a supervisor whose department it is; the staff member holding it (they call the owner)."""
    if viewer.sees_all:
        return True
    if viewer.userid and ticket.assignee == viewer.userid:
        return True
    return viewer.role == "supervisor" and can_see_ticket(viewer, ticket)
