"""FAQ capability: questions the knowledge base could not answer outright."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamped


class FaqMiss(Timestamped, Base):
    """One unanswered (handoff) or unsure (clarify) question, for managers to
    improve the knowledge base (`guanjia faq misses`)."""

    __tablename__ = "faq_misses"
    __table_args__ = (Index("ix_faq_misses_created", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(String(500))
    chat: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # clarify / handoff
    best_id: Mapped[str | None] = mapped_column(String(64))
    best_score: Mapped[float] = mapped_column(Float, default=0.0)
    candidates: Mapped[list | None]
    resolved: Mapped[bool] = mapped_column(default=False)
