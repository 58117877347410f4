"""`guanjia chat`: stdin in, the bot's replies and the pushes it created out."""
from __future__ import annotations

import io
import os
import subprocess
import sys

from tests.conftest import ROOT


def _chat(lines: list[str], who: str | None = "王建国", chat: str = "private") -> tuple[int, str]:
    from bot.chat import run_chat

    out = io.StringIO()
    code = run_chat(who, chat, io.StringIO("\n".join(lines) + "\n"), out)
    return code, out.getvalue()


def test_owner_private_greeting_and_help(demo):
    code, out = _chat(["你好", "帮助", "/quit", "never read"])
    assert code == 0
    assert "you are 王建国 (owner, 金卡, 1-0801)" in out
    assert "王建国> 你好\n管家 > 您好" in out and "报修" in out
    assert "never read" not in out


def test_pushes_to_other_people_are_shown_and_recorded(demo):
    from sqlalchemy import select

    from store.db import session_scope
    from store.models import OutboxMessage

    code, out = _chat(["/as 李秀英", "厨房水管爆了，漏水很严重"], who="o_wang")
    assert "you are 李秀英" in out
    with session_scope() as s:
        rows = list(s.scalars(select(OutboxMessage)))
    assert rows, out  # the handler asked for someone else to be told
    for row in rows:
        assert f"push -> {row.channel}:{row.recipient} [{row.kind}]" in out


def test_group_admin_and_staff_roles(demo):
    code, out = _chat(["/chat vip", "大家好", "/as kefu_xiaomei", "/chat staff", "帮助"], who="王建国")
    assert "the group 尊享业主VIP群 (wr_vip_01)" in out
    assert "role=admin" in out  # 王建国 is an admin of the VIP group in the demo data
    assert "you are 小美 (staff, customer_service, staff) in the WeCom app" in out
    assert "role=staff" in out


def test_unknown_person_asks_then_accepts_a_choice(demo):
    code, out = _chat(["nobody-here", "weixiu_laozhou", "你好"], who="路人甲")
    assert "nobody called '路人甲'" in out and "who are you?" in out
    assert "you are 老周 (staff, repair, staff)" in out and code == 0


def test_empty_database_gets_the_demo_and_cli_pipes(env, tmp_path):
    res = subprocess.run([sys.executable, "-m", "bot", "chat", "--as", "张伟"], input="你好\n/who\n", text=True,
                         capture_output=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"})
    assert res.returncode == 0, res.stderr
    assert "demo community loaded" in res.stdout and "you are 张伟" in res.stdout
    assert "管家 > " in res.stdout and "kefu_xiaomei" in res.stdout


def test_play_an_owner_not_yet_bound(env):
    """`--as new:OPENID` tries the binding exchange as a newcomer would."""
    import io

    from bot.chat import run_chat

    out = io.StringIO()
    run_chat("new:o_visitor", "private", inp=io.StringIO("楼道灯坏了好几天了\n"), out=out)
    text = out.getvalue()
    assert "not bound" in text and "房号" in text and "T1" in text
