"""Complaints and repairs as tickets (issue 4): intake, dispatch, staff actions,
owner commands, survey and the clocks of RULES.md O4-O11, O19, O20.

Importing this package registers every handler.
"""
from handlers.tickets import card, commands, intake, survey  # noqa: F401
from handlers.tickets import clock_family  # noqa: F401  (registers the ticket clock family)
from handlers.tickets.clocks import check_clocks  # noqa: F401
from handlers.tickets.digest import daily_digest, monthly_summary, weekly_review  # noqa: F401
from handlers.tickets.capability import capability  # noqa: F401,E402  (what this capability brings)
