"""The consultations capability (issue 14): a person behind every handoff; see
handlers/capability.py for what a capability declares."""
from handlers.capability import Capability

capability = Capability("consultations")
capability.models("store.models.consultations")
capability.page("bot.console.consultations:bp")
capability.api("bot.api.routes_consultations")
