"""`guanjia check`: every rule file validated at once (all their errors, each
naming the file, the entry and the field), before a restart picks them up."""
from __future__ import annotations

import importlib
import sys

import click

from ground import rules
import handlers

# Modules that declare rule files outside the capabilities (imported for their RuleFiles).
RULE_MODULES = ("faq.kb", "handlers.schedule.config", "bot.campaigns", "bot.console.labels")


def problems() -> list[str]:
    """Every problem of every rule file the project declares ([] when all are good)."""
    handlers.load_capabilities()
    for name in RULE_MODULES:
        importlib.import_module(name)
    return rules.check_all()


@click.command("check")
def check() -> None:
    """Validate every rule file (YAML rules, the knowledge base); exit 1 on any error."""
    found = problems()
    for p in found:
        click.echo(f"error: {p}", err=True)
    if found:
        sys.exit(1)
    click.echo(f"ok: {len(rules.rule_files())} rule files and the knowledge base")
