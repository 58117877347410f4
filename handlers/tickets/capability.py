"""The tickets capability (complaints and repairs, O4-O11, O19, O20): what it
brings besides the chat handlers its modules register (handlers/capability.py)."""
from handlers.capability import Capability

capability = Capability("tickets")
# Its pages and API routes are in bot/ (bot/web.py::CAPABILITY_PAGES, CAPABILITY_API).
capability.models("store.models.tickets")
# The clocks themselves fire in the engine's `deadlines` job (handlers/clocks/capability.py).
capability.job("ticket_surveys", "handlers.tickets.clocks:close_unanswered", trigger="interval", minutes=1,
               once_per="minute")  # a survey nobody answered closes (O20)
# O19 (complaints reviewed daily, open ones analysed weekly, a monthly analysis) are calendar
# obligations of the clock engine (handlers/data/calendar_clocks.yaml); digest.py registers their actions.
capability.demo("handlers.tickets.policy:check_roster_staff")
