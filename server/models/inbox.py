"""The worker's inbox in the mini-program: one row per message, deduplicated by ``dedup_key``.

Jobs write here (never the request); the notifications issue adds delivery
through WeChat on top of it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class InboxMessage(Base):
    __tablename__ = "inbox_messages"
    __table_args__ = (Index("ix_inbox_messages_person_created", "person_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(32))  # e.g. subsidy_application
    title: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(255))  # a mini-program page path
    dedup_key: Mapped[str] = mapped_column(String(160), unique=True)
    read_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
