"""The membership capability (seed 000): tiers, applications, sanctions and the
monthly evaluation; see handlers/capability.py for what a capability declares."""
from handlers.capability import Capability

capability = Capability("membership")
capability.models("store.models.membership")
capability.cli("handlers.membership.cli:member")
capability.job("memberships", "handlers.membership.service:evaluate_memberships", trigger="cron", day=1,
               hour=3, minute=10, once_per="month")
capability.demo("handlers.membership.demo:load_demo_spend")
