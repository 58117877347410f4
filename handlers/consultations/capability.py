"""The consultations capability (issue 14): a person behind every handoff; see
handlers/capability.py for what a capability declares."""
from handlers.capability import Capability

capability = Capability("consultations")
# Its pages and API routes are in bot/ (bot/web.py::CAPABILITY_PAGES, CAPABILITY_API).
capability.models("store.models.consultations")
