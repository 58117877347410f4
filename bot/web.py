"""The Flask app factory (gunicorn: `bot.web:create_app()`)."""
from __future__ import annotations

import logging

from flask import Flask, redirect

from bot import ports, web_guard
from bot.logs import setup_logging
from bot.webhooks import make_channels
from ground.config import Settings, get_settings
from handlers import load_capabilities
from handlers.capability import resolve
from handlers.registry import DuplicateRegistration

# The edge's own blueprints. A capability's pages and API routes come from its
# `Capability` object (handlers/capability.py), through handlers.CAPABILITIES.
CORE_BLUEPRINTS: tuple[str, ...] = ("bot.webhooks:bp", "bot.health:bp", "bot.api:bp", "bot.console:bp")
# A capability's pages and API modules that live here in bot/ (they need Flask, the console's
# sign-in, the API blueprint), by capability name: handlers/ may not name bot/, so the edge
# says which of its parts belong to which capability, as store/models/__init__.py lists the
# capabilities' tables. Installed only while that capability is in handlers.CAPABILITIES,
# after the parts its own `capability.page` / `capability.api` name (tests/capdemo does).
CAPABILITY_PAGES: dict[str, tuple[str, ...]] = {
    "tickets": ("bot.console.ticket_media:bp",),  # the photos and locations on the ticket page
    "groups": ("bot.groups_web:bp",),  # /sidebar, the staff admin's chat toolbar page
    "consultations": ("bot.console.consultations:bp",),
}
CAPABILITY_API: dict[str, tuple[str, ...]] = {
    "consultations": ("bot.api.routes_consultations",),
}


def create_app(settings: Settings | None = None) -> Flask:
    setup_logging()
    ports.install()
    settings = settings or get_settings()
    app = Flask(__name__)
    app.config["GUANJIA_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = None  # the webhooks enforce their own limit with a clean 413
    app.config.update(make_channels(settings))
    web_guard.install_converters(app)  # before any blueprint's rules are built
    web_guard.install(app)
    install_blueprints(app)
    # `/` is where people land first: the console (it asks for a sign-in).
    app.add_url_rule("/", "root", lambda: redirect("/console/"))
    logging.getLogger(__name__).info("web app ready (mp=%s, wecom=%s)", settings.wechat.enabled,
                                     settings.wecom.enabled)
    return app


def install_blueprints(app: Flask) -> None:
    """The core blueprints, then every capability's pages; its API modules are
    imported first so their routes are on `bot.api:bp` when it is registered.
    Two capabilities answering the same URL and method raise, naming both."""
    import importlib

    caps = load_capabilities()
    for cap in caps:
        for module in (*cap.api_modules, *CAPABILITY_API.get(cap.name, ())):
            importlib.import_module(module)
    for spec in CORE_BLUEPRINTS:
        app.register_blueprint(resolve(spec))
    for cap in caps:
        for spec in (*cap.pages, *CAPABILITY_PAGES.get(cap.name, ())):
            app.register_blueprint(resolve(spec))
    check_routes(app)


def check_routes(app: Flask) -> None:
    """A URL and method answered by two views is a mistake Flask keeps quiet
    about (the first rule wins): refuse it."""
    seen: dict[tuple[str, str], str] = {}
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            key = (rule.rule, method)
            if key in seen and seen[key] != rule.endpoint:
                raise DuplicateRegistration("route", f"{method} {rule.rule}", seen[key], rule.endpoint)
            seen[key] = rule.endpoint
