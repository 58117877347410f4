"""Rule files: one loader (ground/rules.py) for every YAML rule, errors naming
file, entry and field, one reload scheme, and `guanjia check` reporting all."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ground import rules
from tests.conftest import ROOT


def test_every_rule_file_of_the_project_is_valid():
    from bot.rule_check import problems

    assert problems() == []
    names = {rf.name for rf in rules.rule_files()}
    for f in ("handlers/data/tiers.yaml", "handlers/data/clocks.yaml", "handlers/groups/data/moderation.yaml",
              "handlers/schedule/schedule.yaml", "handlers/data/display_labels.yaml"):
        assert f in names


def test_schema_errors_name_file_entry_field_and_list_them_all(tmp_path):
    schema = rules.Record(order=rules.ListOf(rules.Text(), min=1),
                          tiers=rules.MapOf(rules.Record(keep_spend=rules.Opt(rules.Number(min=0), 0))),
                          closed=True)
    f = tmp_path / "tiers.yaml"
    f.write_text("order: []\ntiers:\n  银卡: {keep_spend: -1}\nodrer: 1\n", encoding="utf-8")
    with pytest.raises(rules.RulesError) as err:
        rules.RuleFile(f, schema=schema).get()
    assert err.value.problems == (
        f"{f}: field 'order': should be a list of non-empty text (at least 1), got []",
        f"{f}: tiers.银卡: field 'keep_spend': should be a number >= 0, got -1",
        f"{f}: field 'odrer': unknown field",
    )


def test_reload_on_edit_keeps_the_last_good_version(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("limit: 3\n", encoding="utf-8")
    rf = rules.RuleFile(f, schema=rules.Record(limit=rules.Int(min=1)), build=lambda d, src: d["limit"])
    assert rf.get() == 3
    f.write_text("limit: 5\n", encoding="utf-8")
    assert rf.get() == 5  # an edit is picked up without a restart
    f.write_text("limit: soon\n", encoding="utf-8")
    assert rf.get() == 5 and "field 'limit'" in rf.last_error  # a broken edit: the last good stays
    assert rf.check() == [f"{f}: field 'limit': should be a whole number >= 1, got 'soon'"]
    rf.reload()
    with pytest.raises(rules.RulesError, match="field 'limit'"):
        rf.get()  # nothing to fall back on after an explicit reload
    f.write_text("limit: [\n", encoding="utf-8")
    with pytest.raises(rules.RulesError, match="r.yaml: is not valid YAML"):
        rf.get()


def test_old_error_names_are_the_one_type():
    from bot.console.labels import LabelsError
    from faq.kb import KBError
    from handlers.groups.mod_lexicon import ModerationDataError
    from handlers.membership.rules import RulesError
    from handlers.tickets.policy import PolicyError
    from handlers.understanding import LexiconError
    from handlers.schedule.config import ScheduleError

    assert {LabelsError, KBError, ModerationDataError, RulesError, PolicyError, LexiconError, ScheduleError} \
        == {rules.RulesError}


def test_guanjia_check_reports_every_broken_file(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "WECOM_", "GUANJIA_"))}
    env["GUANJIA_VAR_DIR"] = str(tmp_path)
    ok = subprocess.run([sys.executable, "-m", "bot", "check"], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok:")
