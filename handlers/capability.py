"""One object per capability that records what it brings, as a Flask blueprint
records its setup: text commands, intents, events, conversations, card
buttons, console pages, API routes, CLI commands, periodic jobs, warm-ups,
demo loaders and the model modules it owns.

    capability = Capability("tickets")

    @capability.text_command("ticket_mine", r"^我的工单$")
    def mine(ctx, msg, route): ...

    capability.cli("handlers.membership.cli:member")
    capability.job("ticket_clocks", "handlers.tickets.clocks:check_clocks", trigger="interval", minutes=1,
                   once_per="minute")

The hosts (`bot/web.py` app factory, `bot/worker.py`, `bot/cli.py`, the
schedule's `handlers/schedule/config.py`, `bot/demo.py`) iterate the one list
`handlers.CAPABILITIES` and install what each recorded.

Chat parts (commands, intents, events...) register at once into
`handlers.registry` (importing the capability is installing them; a name
registered twice raises there). Edge parts (pages, API routes, CLI commands)
are recorded as import *paths* ("module:attr") that the edge resolves: they
need Flask, the console's sign-in and the API's blueprint. A path never names
`bot/` or `scheduler/` (the layers point down, also by string: tests/test_layers.py):
pages and API modules that live in `bot/` are listed there by capability name
(`bot/web.py::CAPABILITY_PAGES`, `CAPABILITY_API`). Jobs, warm-ups and demo
loaders take a callable or a path.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from handlers import card_events, registry
from handlers.registry import DuplicateRegistration, Handler

TRIGGERS = ("interval", "cron")


def resolve(spec: Any) -> Any:
    """A "module:attr" path (or the object itself) -> the object."""
    if not isinstance(spec, str):
        return spec
    module, sep, attr = spec.partition(":")
    if not sep or not attr:
        raise ValueError(f"expected 'module:attr', got {spec!r}")
    return getattr(importlib.import_module(module), attr)


def spec_name(spec: Any) -> str:
    return spec if isinstance(spec, str) else f"{spec.__module__}:{spec.__qualname__}"


@dataclass(frozen=True)
class Job:
    """A periodic job. `fn(session, now)` returns Pushes (or an Outcome, or None),
    which go to the outbox; with `session=False` it is called as `fn()` and
    manages its own sessions. Timing as in schedule.yaml (APScheduler fields)."""
    name: str
    fn: Any
    trigger: str
    trigger_args: dict
    queue: str = "scheduled"
    once_per: str | int | None = None
    session: bool = True
    owner: str = ""


@dataclass(eq=False)  # one object per capability: compared by identity
class Capability:
    name: str
    commands: list[str] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    conversations: list[str] = field(default_factory=list)
    cards: list[str] = field(default_factory=list)
    pages: list[Any] = field(default_factory=list)  # Flask blueprints, "module:bp"
    api_modules: list[str] = field(default_factory=list)  # modules whose import adds routes to bot.api:bp
    cli_commands: list[Any] = field(default_factory=list)  # click commands, "module:command"
    jobs: dict[str, Job] = field(default_factory=dict)
    warmups: list[Any] = field(default_factory=list)
    demo_loaders: list[Any] = field(default_factory=list)  # fn(session) after the demo community exists
    model_modules: list[str] = field(default_factory=list)

    # --- chat: registered now, into handlers.registry -----------------------------------

    def text_command(self, name: str, pattern: str, **kw: Any) -> Callable[[Handler], Handler]:
        """`registry.text_command` with this capability as the registrant."""
        self._add(self.commands, name, "text command")
        return registry.text_command(name, pattern, owner=self.name, **kw)

    def intent(self, intent: str, *, replaces: Handler | None = None) -> Callable[[Handler], Handler]:
        """The handler of a classified intent. Taking over another capability's
        handler is explicit: `replaces=` that function (it must be the one registered)."""
        self._add(self.intents, intent, "intent handler")
        return registry.intent_handler(intent, owner=self.name, replaces=replaces)

    def event(self, event: str, *, replaces: Handler | None = None) -> Callable[[Handler], Handler]:
        self._add(self.events, event, "event handler")
        return registry.event_handler(event, owner=self.name, replaces=replaces)

    def conversation(self, name: str) -> Callable[[Handler], Handler]:
        self._add(self.conversations, name, "conversation handler")
        return registry.conversation_handler(name, owner=self.name)

    def routed(self, fn: Handler) -> Handler:
        """Sees every routed text before its handler (returns an Outcome to take it)."""
        return registry.routed_hook(fn, owner=self.name)

    def card(self, prefix: str) -> Callable:
        """WeCom card clicks whose EventKey / TaskId starts with `prefix` ("ticket:")."""
        self._add(self.cards, prefix, "card prefix")
        return card_events.prefix(prefix, owner=self.name)

    # --- edge: paths the hosts resolve --------------------------------------------------

    def page(self, blueprint: Any) -> None:
        """A Flask blueprint (console pages, a sidebar...), registered by the app factory."""
        self.pages.append(blueprint)

    def api(self, module: str) -> None:
        """A module whose `api_route`s add endpoints under /api/v1."""
        self.api_modules.append(module)

    def cli(self, command: Any) -> None:
        """A click command or group added to `guanjia`."""
        self.cli_commands.append(command)

    def job(self, name: str, fn: Any = None, *, trigger: str, queue: str = "scheduled",
            once_per: str | int | None = None, session: bool = True, **trigger_args: Any):
        """A periodic job the scheduler runs (usable as a decorator when `fn` is None)."""
        if trigger not in TRIGGERS:
            raise ValueError(f"capability {self.name}: job {name}: trigger must be one of {TRIGGERS}")
        if not trigger_args:
            raise ValueError(f"capability {self.name}: job {name}: a {trigger} trigger needs its fields")

        def add(f: Any) -> Any:
            if name in self.jobs:
                raise DuplicateRegistration("job", name, f"capability {self.name}", f"capability {self.name}")
            self.jobs[name] = Job(name, f, trigger, dict(trigger_args), queue, once_per, session, self.name)
            return f

        return add(fn) if fn is not None else add

    def warm_up(self, fn: Any) -> None:
        """Run once in the worker parent before jobs (load models, indexes)."""
        self.warmups.append(fn)

    def demo(self, fn: Any) -> None:
        """fn(session) run by `guanjia demo-data` after the demo community exists."""
        self.demo_loaders.append(fn)

    def models(self, *modules: str) -> None:
        """The `store.models.*` modules holding this capability's tables."""
        self.model_modules.extend(modules)

    def _add(self, seen: list[str], name: str, kind: str) -> None:
        if name not in seen:
            seen.append(name)


# --- the hosts' side: everything of one kind, duplicates refused ---------------------------

def unique(caps: Iterable[Capability], kind: str, items: Callable[[Capability], Iterable[tuple[str, Any]]]) -> dict:
    """name -> item over all capabilities; a name two capabilities bring raises."""
    out: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for cap in caps:
        for name, item in items(cap):
            if name in out:
                raise DuplicateRegistration(kind, name, f"capability {owner[name]}", f"capability {cap.name}")
            out[name], owner[name] = item, cap.name
    return out


def all_jobs(caps: Iterable[Capability]) -> dict[str, Job]:
    return unique(caps, "job", lambda c: c.jobs.items())


def run_all(specs: Iterable[Any], *args: Any) -> None:
    for spec in specs:
        resolve(spec)(*args)
