"""The peer: a WeRoBot echo bot in safe mode, what a user might pick instead of us.

Per message it checks the URL and message signatures, decrypts, parses, and answers
with an encrypted passive reply echoing the text. No session storage (SESSION_STORAGE
False: WeRoBot's default would be a SQLite file written on every message), no other
storage. Served by the same gunicorn configuration as the real app (bench/ingress.py),
with the same credentials as the test platform (WECHAT_TOKEN / _AES_KEY / _APPID).

Needs the bench extra: `.venv/bin/pip install -e '.[bench]'`.
"""
from __future__ import annotations

import logging
import os

from werobot import WeRoBot

robot = WeRoBot(token=os.environ["WECHAT_TOKEN"], encoding_aes_key=os.environ["WECHAT_AES_KEY"],
                app_id=os.environ["WECHAT_APPID"], SESSION_STORAGE=False)
# WeRoBot logs every unanswered message at WARNING; keep its logger quiet like ours.
robot.logger.setLevel(logging.ERROR)


@robot.text
def echo(message) -> str:  # noqa: ANN001 (WeRoBot's message class)
    return message.content


def create_app():  # noqa: ANN201 (a bottle WSGI app)
    robot.crypto  # noqa: B018  (built at import so the first request pays nothing extra)
    return robot.wsgi
