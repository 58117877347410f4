"""The manager's console: server-rendered pages under /console (blueprint `bot.console:bp`).

No build step and nothing from a CDN: Jinja templates, one CSS file, a few
lines of JS, charts drawn as inline SVG on the server.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Blueprint

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")


def _secret_key(var_dir: Path) -> str:
    """The session-signing key: GUANJIA_SECRET_KEY, else one kept in var/ so that
    every gunicorn worker and a restart agree (a per-process random key would log
    people out at random)."""
    env = os.environ.get("GUANJIA_SECRET_KEY")
    if env:
        return env
    path = var_dir / "console_secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker won the race: use its key
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key


@bp.record_once
def _configure(state) -> None:
    app = state.app
    if not app.secret_key:
        app.secret_key = _secret_key(app.config["GUANJIA_SETTINGS"].var_dir)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    from bot.console import labels

    labels.labels()  # a malformed display_labels.yaml stops the start, naming file and field


# Importing the view modules registers their pages on `bp` (reveal: the phone reveal, handlers/privacy.py).
from bot.console import views, pages, capability_views, kb_queries, exports, reveal  # noqa: E402,F401
