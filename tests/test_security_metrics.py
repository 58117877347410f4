"""/metrics (issue 13, item 12): gauges right in prometheus multiprocess mode
(one line per state, no stale per-process copies), and not open to the world."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from sqlalchemy import update

from tests import platform as P
from tests.conftest import ROOT

SCRAPE = """
from bot.web import create_app
import sys
client = create_app().test_client()
for _ in range(int(sys.argv[1])):
    text = client.get("/metrics").data.decode()
print(text)
"""


def _scrape_in_new_process(env: dict, prom_dir, times: int = 1) -> str:
    """A web worker process as under gunicorn: its own pid, the shared multiprocess directory."""
    child_env = {**os.environ, "DATABASE_URL": env["database_url"], "REDIS_URL": env["redis_url"],
                 "PROMETHEUS_MULTIPROC_DIR": str(prom_dir), "GUANJIA_VAR_DIR": str(env["tmp"] / "var")}
    out = subprocess.run([sys.executable, "-c", SCRAPE, str(times)], cwd=str(ROOT), env=child_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _lines(text: str, name: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(name + "{")]


def test_inbox_gauges_are_right_across_processes(env, tmp_path):
    from bot import inbox
    from handlers.message import Message
    from store.db import session_scope
    from store.models import InboxMessage

    prom = tmp_path / "prom"
    prom.mkdir()
    inbox.accept(Message(channel="mp", sender="o_m1", kind="text", text="你好", msg_id="m-1", created_at=1))
    first = _scrape_in_new_process(env, prom, times=3)  # three scrapes in one process
    assert _lines(first, "guanjia_inbox_messages").count('guanjia_inbox_messages{state="queued"} 1.0') == 1
    with session_scope() as s:
        s.execute(update(InboxMessage).values(state="done"))
    second = _scrape_in_new_process(env, prom)  # another worker answers the next scrape
    lines = _lines(second, "guanjia_inbox_messages")
    assert not [ln for ln in lines if "pid=" in ln], lines  # no per-process copies
    assert 'guanjia_inbox_messages{state="queued"} 0.0' in lines
    assert 'guanjia_inbox_messages{state="done"} 1.0' in lines
    assert len(lines) == len({re.sub(r"\s.*", "", ln) for ln in lines})  # each state once
    assert len([ln for ln in second.splitlines() if ln.startswith("# TYPE guanjia_inbox_messages ")]) == 1


def test_metrics_are_not_open_to_the_world(app_client, monkeypatch):
    assert app_client.get("/metrics").status_code == 200  # loopback (the default allow list)
    outside = {"REMOTE_ADDR": "203.0.113.5"}
    assert app_client.get("/metrics", environ_base=outside).status_code == 403
    # through the local proxy, the address it reports is the one that counts
    assert app_client.get("/metrics", headers={"X-Real-IP": "203.0.113.5"}).status_code == 403
    monkeypatch.setenv("GUANJIA_METRICS_TOKEN", "scrape-token-1234567890")
    assert app_client.get("/metrics", environ_base=outside,
                          headers={"Authorization": "Bearer scrape-token-1234567890"}).status_code == 200
    assert app_client.get("/metrics", environ_base=outside,
                          headers={"Authorization": "Bearer wrong"}).status_code == 403
    monkeypatch.setenv("GUANJIA_METRICS_ALLOW", "10.0.0.0/8")
    assert app_client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert app_client.get("/metrics").status_code == 403  # loopback no longer listed
    q, body = P.mp_url_check(), None
    assert app_client.get("/wechat/mp", query_string=q, environ_base=outside).status_code == 200  # others unaffected
