"""Console queries and pages for the capabilities written in parallel
(membership/bookings, groups/moderation, campaigns, FAQ). Each returns None
while its capability has not landed, and the page says so."""
from __future__ import annotations

from flask import g, render_template
from sqlalchemy.orm import Session

from bot.console import bp, queries as Q
from bot.console.views import page


def unanswered(session: Session, limit: int = 10):
    return None


def pending_bookings(session: Session):
    return None


def pending_applications(session: Session):
    return None


def moderation_waiting(session: Session):
    return None


@bp.get("/satisfaction")
@page("supervisor")
def satisfaction():
    return render_template("not_installed.html", title="满意度", capability="tickets / surveys")


@bp.get("/kb")
@page("staff")
def kb():
    return render_template("not_installed.html", title="知识库", capability="faq")


@bp.get("/announcements")
@page("supervisor")
def announcements():
    return render_template("not_installed.html", title="公告", capability="campaigns")
