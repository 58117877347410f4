"""One clock engine for every obligation of RULES.md (issue 15).

    from handlers import clocks
    clocks.start(session, "service", f"booking:{b.id}", "O2_review", now, owner_id=..., team=..., assignee=...)
    clocks.stop_named(session, f"booking:{b.id}", "O2_review", now, by=userid)
    clocks.on_event(session, "ticket", f"ticket:{t.id}", "completed", now, specs, round=..., ticket_id=t.id)
    clocks.check_due(session, now)   # the scheduler's `deadlines` job: warnings, breaches, escalation
                                     # steps, and every occurrence of the calendar obligations (O12-O19)

Policies: `handlers/clocks/policy.py` (the format); rows: `store/models/clocks.py`;
families (what differs per capability): `handlers/tickets/clock_family.py`,
`handlers/membership/clock_family.py`, `handlers/clocks/calendar.py` (the recurring
calendar obligations, `handlers/data/calendar_clocks.yaml`). docs/DEV_NOTES.md: how to add
an obligation.
"""
from handlers.clocks.engine import (Family, cancel, check_due, family, find, on_event,  # noqa: F401
                                    register_family, start, stop, stop_named)
from handlers.clocks.policy import ClockSpec, PolicyError, Step, parse_clock, parse_clocks  # noqa: F401
from store.models.clocks import ACTIVE_STATES  # noqa: F401
from handlers.clocks import calendar  # noqa: F401,E402  (the calendar family: O12-O19)
from handlers.clocks.capability import capability  # noqa: F401,E402  (one line in handlers.CAPABILITIES)
