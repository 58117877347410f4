"""The groups capability (issue 6): VIP and building groups, moderation, the
sidebar; see handlers/capability.py for what a capability declares."""
from handlers.capability import Capability

capability = Capability("groups")
# Its pages and API routes are in bot/ (bot/web.py::CAPABILITY_PAGES, CAPABILITY_API).
capability.models("store.models.groups")
capability.cli("handlers.groups.cli:groups")
capability.job("archive_poll", "handlers.groups.archive:poll_archive", trigger="interval", seconds=30,
               once_per=30, session=False)
capability.warm_up("handlers.groups.moderation:warm_up")
