"""A missing or malformed setting fails at start with a message naming it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests import platform as P
from tests.conftest import ROOT

GOOD_KEY = P.MP_AES_KEY

BAD = [
    ({"GUANJIA_TIMESTAMP_WINDOW_S": "five"}, "GUANJIA_TIMESTAMP_WINDOW_S"),
    ({"GUANJIA_TIMESTAMP_WINDOW_S": "-1"}, "GUANJIA_TIMESTAMP_WINDOW_S"),
    ({"GUANJIA_PASSIVE_BUDGET_S": "7"}, "GUANJIA_PASSIVE_BUDGET_S"),
    ({"GUANJIA_MAX_BODY_BYTES": "12kb"}, "GUANJIA_MAX_BODY_BYTES"),
    ({"GUANJIA_WEB_THREADS": "0"}, "GUANJIA_WEB_THREADS"),
    ({"GUANJIA_TIMEZONE": "Mars/Olympus"}, "GUANJIA_TIMEZONE"),
    ({"DATABASE_URL": "var/guanjia.db"}, "DATABASE_URL"),
    ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
    ({"WECHAT_APPID": "wx1", "WECHAT_TOKEN": "t", "WECHAT_AES_KEY": "short"}, "WECHAT_AES_KEY"),
    ({"WECHAT_APPID": "wx1", "WECHAT_TOKEN": "t", "WECHAT_AES_KEY": "!" * 43}, "WECHAT_AES_KEY"),
    ({"WECHAT_APPID": "wx1"}, "WECHAT_TOKEN"),
    ({"WECOM_TOKEN": "t"}, "WECOM_CORP_ID"),
    ({"WECOM_CORP_ID": "ww1", "WECOM_TOKEN": "t"}, "WECOM_AES_KEY"),
    ({"WECOM_CORP_ID": "ww1", "WECOM_TOKEN": "t", "WECOM_AES_KEY": GOOD_KEY, "WECOM_AGENT_ID": "abc"},
     "WECOM_AGENT_ID"),
    ({"WECHAT_API_BASE": "api.weixin.qq.com"}, "WECHAT_API_BASE"),
]


@pytest.mark.parametrize("values,named", BAD, ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD)])
def test_load_settings_names_the_variable(env, monkeypatch, values, named):
    from ground.config import ConfigError, load_settings

    for k, v in values.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert named in str(err.value)


def test_good_settings_load(env, monkeypatch):
    from ground.config import load_settings

    for k, v in P.channel_env("http://127.0.0.1:9").items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.wechat.enabled and s.wecom.enabled and s.wecom.api_base == "http://127.0.0.1:9"


def _run(args: list[str], extra: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "WECOM_", "GUANJIA_"))}
    env |= extra
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["worker"], ["scheduler"], ["run"]])
def test_commands_exit_2_naming_the_setting(tmp_path, command):
    res = _run(command, {"GUANJIA_PASSIVE_BUDGET_S": "soon", "GUANJIA_VAR_DIR": str(tmp_path)})
    assert res.returncode == 2, res.stderr
    assert "configuration error" in res.stderr and "GUANJIA_PASSIVE_BUDGET_S" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("name,value,says", [
    ("GUANJIA_OUTBOX_BACKOFF_S", "soon", "must be a number, got 'soon'"),
    ("GUANJIA_HTTP_TIMEOUT_S", "-1", "must be at least 0, got -1.0"),
    ("GUANJIA_WECHAT_TOKEN_MODE", "rotating", "must be 'stable' or 'token'"),
])
def test_outbound_options_name_the_bad_variable(monkeypatch, name, value, says):
    from bot.outbound.options import get_options
    from ground.config import ConfigError

    monkeypatch.delenv("GUANJIA_OUTBOX_BACKOFF_S", raising=False)
    assert get_options().backoff_base_s == 10.0  # the documented default
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        get_options()
    assert str(err.value).startswith(name) and says in str(err.value)
