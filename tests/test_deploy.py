"""deploy/: the files an IT person uses are complete and consistent with the code."""
from __future__ import annotations

import re
import runpy

import pytest
import yaml

from tests.conftest import ROOT, SHARED

DEPLOY = ROOT / "deploy"


def _contract_variables() -> set[str]:
    if not (SHARED / "CONTRACT.md").exists():
        pytest.skip("shared/CONTRACT.md is not beside the checkout (CI has it)")
    text = (SHARED / "CONTRACT.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))


def test_env_example_documents_every_contract_variable_and_loads(env, monkeypatch):
    from dotenv import dotenv_values

    values = dotenv_values(DEPLOY / ".env.example")
    missing = _contract_variables() - set(values)
    assert not missing, missing
    # As shipped (blanks = defaults) it is a valid configuration.
    for k, v in values.items():
        if k not in ("DATABASE_URL", "REDIS_URL", "GUANJIA_VAR_DIR"):
            monkeypatch.setenv(k, v or "")
    from ground.config import load_settings

    s = load_settings()
    assert s.timestamp_window_s == 300 and s.passive_budget_s == 3 and not s.wechat.enabled


def test_gunicorn_config_uses_gthread_and_the_settings(env, monkeypatch, tmp_path):
    monkeypatch.setenv("GUANJIA_WEB_WORKERS", "3")
    monkeypatch.setenv("GUANJIA_WEB_THREADS", "12")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))
    from ground.config import reset_settings

    reset_settings()
    conf = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert conf["worker_class"] == "gthread" and conf["workers"] == 3 and conf["threads"] == 12
    assert conf["timeout"] > 5 and conf["wsgi_app"] == "bot.web:create_app()"
    assert conf["control_socket_disable"] is True  # several instances on one machine must not clash
    assert (tmp_path / "prom").is_dir()


def test_compose_has_every_service():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"web", "worker", "scheduler", "redis", "postgres", "migrate"} <= set(services)
    assert services["worker"]["command"] == ["guanjia", "worker"]
    assert services["scheduler"]["command"] == ["guanjia", "scheduler"]
    assert "postgresql" in services["web"]["environment"]["DATABASE_URL"]


def test_systemd_units_run_the_cli():
    units = {p.name: p.read_text() for p in (DEPLOY / "systemd").glob("*.service")}
    assert set(units) == {"guanjia-web.service", "guanjia-worker@.service", "guanjia-scheduler.service"}
    assert "gunicorn.conf.py" in units["guanjia-web.service"]
    assert "guanjia worker" in units["guanjia-worker@.service"]
    assert "guanjia scheduler" in units["guanjia-scheduler.service"]
    assert all("RestartPreventExitStatus=2" in u for u in units.values())  # bad config: no restart loop


def test_nginx_limits_body_and_times_out_before_the_platforms():
    conf = (DEPLOY / "nginx" / "guanjia.conf").read_text()
    assert "client_max_body_size" in conf and "proxy_read_timeout 6s" in conf
    assert "proxy_next_upstream off" in conf
