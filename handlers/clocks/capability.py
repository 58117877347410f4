"""The clock engine as a capability: its one periodic job fires every clock of
every family (tickets O4-O11, member services and consultations O1-O3, and the
calendar obligations O12-O19 of handlers/data/calendar_clocks.yaml)."""
from handlers.capability import Capability

capability = Capability("clocks")
capability.models("store.models.clocks")
# Every clock of RULES.md: one engine, one job (warnings, breaches, escalation steps,
# calendar occurrences).
capability.job("deadlines", "handlers.clocks:check_due", trigger="interval", minutes=1, once_per="minute")
