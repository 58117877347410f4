"""The Flask app factory (gunicorn: `bot.web:create_app()`)."""
from __future__ import annotations

import logging

from flask import Flask, redirect

from ground.config import Settings, get_settings

# Blueprints registered by create_app; a capability with pages adds its module here.
BLUEPRINTS: list[str] = [
    "bot.webhooks:bp",
    "bot.health:bp",
    "bot.groups_web:bp",
    "bot.api:bp", "bot.console:bp",
    "bot.console.consultations:bp",
    "bot.console.ticket_media:bp",
]


def create_app(settings: Settings | None = None) -> Flask:
    import importlib

    from bot import web_guard
    from bot.logs import setup_logging
    from bot.webhooks import make_channels

    setup_logging()
    settings = settings or get_settings()
    app = Flask(__name__)
    app.config["GUANJIA_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = None  # the webhooks enforce their own limit with a clean 413
    app.config.update(make_channels(settings))
    web_guard.install_converters(app)  # before any blueprint's rules are built
    web_guard.install(app)
    for spec in BLUEPRINTS:
        module, attr = spec.split(":")
        app.register_blueprint(getattr(importlib.import_module(module), attr))
    # `/` is where people land first: the console (it asks for a sign-in).
    app.add_url_rule("/", "root", lambda: redirect("/console/"))
    logging.getLogger(__name__).info("web app ready (mp=%s, wecom=%s)", settings.wechat.enabled,
                                     settings.wecom.enabled)
    return app
