"""The edge's adapters for the ports of ground/ports.py, installed at start.

`install()` is called by the app factory (bot/web.py), `guanjia worker`, `guanjia
scheduler`, every `guanjia` command (bot/cli.py) and the test fixtures (tests/conftest.py);
calling it twice is harmless. Handlers reach the platforms, the inbox, the queues and the
campaigns only through these.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot import campaigns, inbox
from bot.outbound import outbox
from bot.outbound.clients import get_wecom_client
from bot.queues import get_queue, get_redis
from ground import ports

log = logging.getLogger(__name__)

# Edge tasks a lower floor may queue by name (it may not spell a path into bot/).
EDGE_TASKS = {
    "fetch_ticket_media": "bot.media_fetch.fetch_ticket_media",
}

class WeComStaffChats:
    """appchat/create and appchat/update through the project's WeCom client."""

    def create(self, name: str, owner: str, members: list[str], chat_id: str | None = None) -> str:
        return get_wecom_client().appchat_create(name, owner, members, chat_id)

    def remove_members(self, chat_id: str, userids: list[str]) -> None:
        get_wecom_client().appchat_update(chat_id, del_user_list=userids)


class WeComGroupDirectory:
    """externalcontact/groupchat/get through the project's WeCom client."""

    def get(self, chat_id: str) -> dict | None:
        try:
            answer = get_wecom_client().call("POST", "/cgi-bin/externalcontact/groupchat/get",
                                             {"chat_id": chat_id, "need_name": 1})
        except ports.PlatformError as exc:
            log.warning("groupchat/get %s failed: %s", chat_id, exc)
            return None
        return answer.get("group_chat")


class InboxAdapter:
    def accept(self, msg: Any) -> int | None:
        return inbox.accept(msg).inbox_id


class RqJobs:
    """rq for work, a Redis key with a TTL for a lock."""

    def enqueue(self, queue: str, task: str, *args: Any, job_id: str | None = None,
                failure_ttl: int | None = None) -> None:
        options: dict[str, Any] = {}
        if job_id is not None:
            options["job_id"] = job_id
        if failure_ttl is not None:
            options["failure_ttl"] = failure_ttl
        get_queue(queue).enqueue(EDGE_TASKS.get(task, task), *args, **options)

    def try_lock(self, key: str, ttl_s: int) -> bool | None:
        try:
            return bool(get_redis().set(key, "1", nx=True, ex=ttl_s))
        except Exception as exc:
            log.warning("lock %s unavailable (%s)", key, exc)
            return None

    def unlock(self, key: str) -> None:
        try:
            get_redis().delete(key)
        except Exception:  # it lapses on its own
            pass


class OutboxAdapter:
    def add(self, session: Any, push: Any, now: datetime | None = None) -> int | None:
        row = outbox.add(session, push, now)
        return None if row is None else row.id

    def queue_send(self, outbox_ids: list[int]) -> None:
        outbox.queue_send(outbox_ids)


def install() -> None:
    """Install every port's edge adapter (each call replaces what a test installed)."""
    ports.install(staff_chats=WeComStaffChats(), group_directory=WeComGroupDirectory(), inbox=InboxAdapter(),
                  jobs=RqJobs(), outbox=OutboxAdapter(),
                  campaigns=campaigns)  # the module is the adapter
