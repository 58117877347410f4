"""The ports: what the lower floors ask of the edge, installed by the edge at start.

A handler decides; the edge acts. Where a decision needs an act only the edge can do
(speak to a platform, accept a message into the inbox, queue work or an outbound send,
start a campaign), the handler calls a port here instead of importing the edge. The
edge installs its adapters at start (`bot/ports.py::install`: the app factory,
`guanjia worker`, `guanjia scheduler`, every `guanjia` command and the test fixtures);
a test may install a fake for one port (`install(group_directory=Fake())`).

Calling a port that nobody installed raises `PortNotInstalled` naming it, never a
silent no-op. The protocols are small on purpose: a port is what a handler needs, not
the whole client.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

P = TypeVar("P")


class PortNotInstalled(RuntimeError):
    """A port was called before the edge installed it; the message names the port."""


class PlatformError(Exception):
    """A platform call did not succeed (refused, unreachable, not configured); the message says why.
    The edge's client errors (bot/outbound/clients.py) are of this kind."""


class CampaignError(ValueError):
    """A campaign request that cannot be honoured; the message says why (shown to the person)."""


# --- the ports ------------------------------------------------------------------------------

class StaffChats(Protocol):
    """WeCom internal groups the app creates itself (appchat): the API may post and remove there.
    Synchronous: the caller's reply depends on the platform's answer. Raises PlatformError."""

    def create(self, name: str, owner: str, members: list[str], chat_id: str | None = None) -> str:
        """appchat/create; returns the chat id."""

    def remove_members(self, chat_id: str, userids: list[str]) -> None:
        """appchat/update del_user_list."""


class GroupDirectory(Protocol):
    """Who is in a customer group, as the platform sees it."""

    def get(self, chat_id: str) -> dict | None:
        """groupchat/get's `group_chat` ({name, owner, member_list, admin_list}), None if unknown."""


class Inbox(Protocol):
    """The edge's front door for messages that arrive other than by webhook (the chat archive)."""

    def accept(self, msg: Any) -> int | None:
        """Deduplicate, store and queue a `handlers.message.Message`; the inbox id, None for a repeat."""


class Jobs(Protocol):
    """Background work on the rq queues (ground/keys.py names them) and short locks beside it."""

    def enqueue(self, queue: str, task: str, *args: Any, job_id: str | None = None,
                failure_ttl: int | None = None) -> None:
        """Queue `task`: a dotted path to the caller's own function, or an edge task by name
        (bot/ports.py::EDGE_TASKS). Raises when the queue cannot be reached."""

    def try_lock(self, key: str, ttl_s: int) -> bool | None:
        """Take a lock that lapses after `ttl_s`: True taken, False held by another, None when
        no lock can be had (Redis down: the caller decides whether to go on)."""

    def unlock(self, key: str) -> None:
        """Release a lock taken with try_lock (a lapsed one is no error)."""


class Outbox(Protocol):
    """Pushes recorded in the caller's transaction, sent by the edge after it commits."""

    def add(self, session: Any, push: Any, now: datetime | None = None) -> int | None:
        """Record a `handlers.message.Push`; its outbox id, None when its dedup_key was recorded already."""

    def queue_send(self, outbox_ids: list[int]) -> None:
        """Ask a worker to send these rows now (after the producing transaction committed)."""


class Campaigns(Protocol):
    """Announcements to owners, groups and staff, sent in paced chunks by the scheduler."""

    def create_announcement(self, session: Any, text: str, target: dict, at: datetime | None = None,
                            emergency: bool | None = None, created_by: str = "admin") -> Any:
        """Create (and, when due, start) an announcement; returns the campaign row. Raises CampaignError."""

    def create_campaign(self, session: Any, *, kind: str, title: str, text: str, target: dict,
                        created_by: str = "system", dedup_key: str | None = None) -> Any:
        """Record a campaign in the caller's transaction (sent when due); with `dedup_key`, a
        second call returns the first campaign. Returns the campaign row (its `id`)."""

    def start_after_commit(self, session: Any, campaign_id: int) -> None:
        """Start sending the campaign as soon as the caller's transaction commits."""


# --- the registry ---------------------------------------------------------------------------

PORTS: dict[str, type] = {
    "staff_chats": StaffChats,
    "group_directory": GroupDirectory,
    "inbox": Inbox,
    "jobs": Jobs,
    "outbox": Outbox,
    "campaigns": Campaigns,
}

_installed: dict[str, Any] = {}


def install(**adapters: Any) -> None:
    """Install adapters by port name; None takes one out. An unknown name is a typo: it raises."""
    unknown = sorted(set(adapters) - set(PORTS))
    if unknown:
        raise ValueError(f"no such port: {', '.join(unknown)} (ports: {', '.join(PORTS)})")
    for name, adapter in adapters.items():
        if adapter is None:
            _installed.pop(name, None)
        else:
            _installed[name] = adapter


def installed() -> dict[str, Any]:
    """What is installed now (a test saves it, installs a fake, and puts it back)."""
    return dict(_installed)


def _get(name: str) -> Any:
    try:
        return _installed[name]
    except KeyError:
        raise PortNotInstalled(
            f"port {name!r} is not installed: the edge installs its ports at start "
            f"(bot/ports.py::install); a test installs them through its fixtures") from None


class _Port(Generic[P]):
    """`ports.inbox()` and the like: the installed adapter of one port, typed as its protocol."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self) -> P:
        return _get(self.name)


staff_chats: _Port[StaffChats] = _Port("staff_chats")
group_directory: _Port[GroupDirectory] = _Port("group_directory")
inbox: _Port[Inbox] = _Port("inbox")
jobs: _Port[Jobs] = _Port("jobs")
outbox: _Port[Outbox] = _Port("outbox")
campaigns: _Port[Campaigns] = _Port("campaigns")
