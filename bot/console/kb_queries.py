"""FAQ knowledge base for the console: entries, misses, adding phrasings (filled in when the FAQ capability lands)."""
from __future__ import annotations

from sqlalchemy.orm import Session


def open_misses(session: Session, limit: int = 10):
    return None


from flask import render_template  # noqa: E402

from bot.console import bp  # noqa: E402
from bot.console.views import page  # noqa: E402


@bp.get("/kb")
@page("staff")
def kb():
    return render_template("not_installed.html", title="知识库", capability="faq")
