"""One capability = one package + one line (issue 15).

tests/capdemo is a tiny capability declared on one `Capability` object; the
one line that installs it is "tests.capdemo" in handlers.CAPABILITIES. Then
its command answers through the webhook, its page renders in the console, its
job is in the schedule and runs, its CLI command, warm-up and demo loader run.
Registering any name twice raises an error that names both registrants.
"""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests import platform as P

DEMO = "tests.capdemo"


def _uninstall(cap) -> None:
    """Take the demo back out so later tests see the real list only."""
    import handlers
    from handlers import card_events, registry

    for name in cap.commands:
        registry.remove_text_command(name)
    for name in cap.intents:
        registry._intents.remove(name)
    for name in cap.events:
        registry._events.remove(name)
    for name in cap.conversations:
        registry._conversations.remove(name)
    for p in cap.cards:
        card_events._prefixes.remove(p)
    if DEMO in handlers.CAPABILITIES:
        handlers.CAPABILITIES.remove(DEMO)
    if cap in handlers.load_capabilities():
        handlers.load_capabilities().remove(cap)


@pytest.fixture
def capdemo(monkeypatch):
    """The one line: "tests.capdemo" added to handlers.CAPABILITIES (before the
    hosts start: the app, the CLI's commands, the schedule)."""
    import bot.cli
    from handlers import add_capability
    from handlers.schedule.config import reset_schedule

    cap = add_capability(DEMO)
    reset_schedule()
    bot.cli._register_extra()  # the CLI reads the list when `guanjia` starts
    yield cap
    _uninstall(cap)
    bot.cli.main.commands.pop("capdemo", None)
    reset_schedule()


def test_a_capability_is_one_package_and_one_line(capdemo, demo, app_client, fake_platform):
    from handlers import registry
    from tests import capdemo as C
    from tests.console_support import make_users
    from tests.test_security_scope import login

    # Its text command answers an owner through the Official Account webhook.
    q, body = P.mp_text_request("o_capdemo", C.PING, 9901)
    assert app_client.post("/wechat/mp", query_string=q, data=body).status_code == 200
    P.drain_queues()
    sent = [c["json"] for c in fake_platform.sent("/cgi-bin/message/custom/send")]
    assert any(m["touser"] == "o_capdemo" and m["text"]["content"] == C.PONG for m in sent), sent
    assert registry.get_intent_handler("capdemo_question") is C.question

    # Its page renders in the console, behind the console's sign-in.
    assert app_client.get("/console/capdemo/").status_code == 302
    make_users()
    assert login(app_client, "staff").status_code == 302
    r = app_client.get("/console/capdemo/")
    assert r.status_code == 200 and "这是演示能力的页面" in r.get_data(as_text=True)


def test_its_job_cli_warm_up_and_demo_loader_are_installed(capdemo, demo, frozen_clock, monkeypatch):
    from bot.cli import main
    from bot.demo import load_demo
    from bot.worker import warm_up
    from scheduler import jobs
    from handlers.schedule.config import get_schedule
    from scheduler.main import due_between
    from scheduler.tasks import run_job
    from tests import capdemo as C

    from datetime import timedelta

    spec = get_schedule().jobs["capdemo_tick"]
    assert (spec.trigger, spec.trigger_args, spec.once_per) == ("interval", {"minutes": 5}, 300)
    start = frozen_clock.now()
    assert [n for _, n in due_between(start, start + timedelta(minutes=10), ["capdemo_tick"])] == \
        ["capdemo_tick", "capdemo_tick"]
    assert jobs.fire("capdemo_tick") == "queued"
    C.TICKS.clear()
    assert run_job("capdemo_tick") == {"hook": "capdemo_tick", "pushes": 0}
    assert C.TICKS == [frozen_clock.now()]

    assert CliRunner().invoke(main, ["capdemo"]).output.strip() == C.PONG
    import handlers

    C.WARMED.clear()  # the worker's warm-up runs each capability's (only the demo's here: the rest are slow)
    with monkeypatch.context() as m:
        m.setattr(handlers, "load_capabilities", lambda: [capdemo])
        warm_up()
    assert C.WARMED == [True]
    C.DEMO_ROWS.clear()
    load_demo()
    assert C.DEMO_ROWS == [1]


# --- a name is registered once ----------------------------------------------------------------------

def test_a_second_handler_for_an_intent_raises_naming_both():
    from handlers import load_capabilities, registry
    from handlers.registry import DuplicateRegistration

    load_capabilities()
    with pytest.raises(DuplicateRegistration) as err:
        @registry.intent_handler("complaint", owner="intruder")
        def complaint_again(ctx, msg, route):  # pragma: no cover - never registered
            return None
    text = str(err.value)
    assert "intent handler 'complaint' registered twice" in text
    assert "handlers.tickets.intake.on_complaint" in text or "(capability tickets)" in text
    assert "complaint_again (capability intruder)" in text


@pytest.mark.parametrize("kind", ["text_command", "event", "conversation", "card"])
def test_every_kind_of_chat_registration_is_once(kind):
    from handlers import load_capabilities
    from handlers.capability import Capability
    from handlers.registry import DuplicateRegistration

    load_capabilities()
    other = Capability("intruder")
    register = {"text_command": lambda: other.text_command("ticket_mine", r"^我的工单$"),
                "event": lambda: other.event("change_external_chat"),
                "conversation": lambda: other.conversation("booking"),
                "card": lambda: other.card("ticket:")}[kind]
    with pytest.raises(DuplicateRegistration, match="registered twice: by .* and by .*capability intruder"):
        @register()
        def again(ctx, msg, route):  # pragma: no cover - never registered
            return None


def test_taking_over_a_handler_must_name_the_one_it_replaces():
    """consultations takes over the understanding capability's handoff, and says so;
    replacing anything else (or in the wrong order) is refused."""
    from handlers import load_capabilities, registry
    from handlers.capability import Capability
    from handlers.consultations import chat
    from handlers.understanding import on_handoff

    load_capabilities()
    assert registry.get_intent_handler("handoff") is chat.on_handoff
    with pytest.raises(ValueError, match="replaces .*on_handoff.* but .*consultations.* is registered"):
        Capability("intruder").intent("handoff", replaces=on_handoff)(lambda ctx, msg, route: None)


def test_two_capabilities_may_not_bring_the_same_job_cli_command_or_route(capdemo, env):
    from flask import Blueprint

    from bot.cli import add_command
    from bot.web import create_app
    from handlers import load_capabilities
    from handlers.capability import Capability, all_jobs
    from handlers.registry import DuplicateRegistration

    twin = Capability("twin")
    twin.job("capdemo_tick", lambda s, now: [], trigger="interval", minutes=1)
    with pytest.raises(DuplicateRegistration, match="job 'capdemo_tick' registered twice: by capability capdemo "
                                                    "and by capability twin"):
        all_jobs([*load_capabilities(), twin])

    import click

    with pytest.raises(DuplicateRegistration, match="CLI command 'capdemo' registered twice"):
        add_command(click.Command("capdemo"), "capability twin")

    bp = Blueprint("twin_pages", __name__)
    bp.add_url_rule("/console/capdemo/", "index", lambda: "twin")
    twin.page(bp)
    load_capabilities().append(twin)
    try:
        with pytest.raises(DuplicateRegistration, match="route 'GET /console/capdemo/' registered twice"):
            create_app()
    finally:
        load_capabilities().remove(twin)


def test_every_capability_is_declared_once_in_the_one_list():
    import handlers
    from handlers import load_capabilities

    caps = load_capabilities()
    assert [c.name for c in caps][: len(handlers.CAPABILITIES)] == \
        ["basics", "clocks", "groups", "tickets", "membership", "bookings", "understanding", "consultations", "phone_reveal", "survey",
         "obligations"]
    # What used to be wired at a dozen places is on the objects.
    by = {c.name: c for c in caps}
    # Their pages and API modules in bot/ are listed by the edge (handlers/ may not name bot/),
    # each under a capability that exists.
    from bot.web import CAPABILITY_API, CAPABILITY_PAGES

    assert "bot.console.ticket_media:bp" in CAPABILITY_PAGES["tickets"]
    assert set(CAPABILITY_PAGES) | set(CAPABILITY_API) <= set(by)
    assert "ticket_surveys" in by["tickets"].jobs and "deadlines" in by["clocks"].jobs and "archive_poll" in by["groups"].jobs
    assert "handlers.evaluate:faq" in by["understanding"].cli_commands
    assert "handlers.groups.moderation:warm_up" in by["groups"].warmups
    assert "bot.api.routes_consultations" in CAPABILITY_API["consultations"]


def test_the_models_a_capability_declares_are_known_to_the_store():
    """`Capability.models` names modules whose tables the migrations and
    Base.metadata know (store/models/__init__.py imports them)."""
    import importlib

    from handlers import load_capabilities
    from store.models import Base

    for cap in load_capabilities():
        for module in cap.model_modules:
            classes = [c for c in vars(importlib.import_module(module)).values()
                       if isinstance(c, type) and issubclass(c, Base) and c is not Base]
            tables = {c.__table__.name for c in classes}
            assert tables and tables <= set(Base.metadata.tables), (cap.name, module)

