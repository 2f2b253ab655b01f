"""Competition scores, results and their public notice (公示), objections, reminders and trade alerts.

Kept apart from :mod:`server.models.competitions`: every table here hangs off a
competition or an entry by id, so the sign-up tables never change for them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, TimestampMixin, utcnow

#: scoring → locked → published (公示) → final; an upheld objection sends published back to scoring.
RESULT_STATES = ("scoring", "locked", "published", "final")
RESULT_STATE_LABELS = {"scoring": "成绩录入中", "locked": "成绩已锁定", "published": "成绩公示中", "final": "成绩已确定"}
OBJECTION_STATUSES = ("open", "upheld", "dismissed")
OBJECTION_STATUS_LABELS = {"open": "待处理", "upheld": "异议成立", "dismissed": "异议不成立"}
SCORE = Numeric(5, 2)  # 0.00 .. 100.00


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class CompetitionScoring(TimestampMixin, Base):
    """One row per competition once scoring starts: the results' state and scoring rules.

    Every change of scores or state locks this row first (``SELECT ... FOR UPDATE``).
    """

    __tablename__ = "competition_scoring"
    __table_args__ = (
        CheckConstraint("state IN " + _in(RESULT_STATES), name="state"),
        CheckConstraint("notice_days BETWEEN 1 AND 30", name="notice_days"),
    )

    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="scoring")
    # With three judges or more, drop the highest and the lowest practical score before averaging.
    drop_extremes: Mapped[bool] = mapped_column(default=False)
    notice_days: Mapped[int] = mapped_column(default=7)
    # Counts publications: an upheld objection and a new publication start a new notice period.
    publication: Mapped[int] = mapped_column(default=0)
    locked_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    notice_ends_at: Mapped[datetime | None]
    finalized_at: Mapped[datetime | None]


class CompetitionScore(TimestampMixin, Base):
    """An entry's scores: theory, each practical judge's score, and the computed practical and final scores."""

    __tablename__ = "competition_scores"
    __table_args__ = (
        CheckConstraint("theory IS NULL OR (theory >= 0 AND theory <= 100)", name="theory"),
    )

    entry_id: Mapped[int] = mapped_column(ForeignKey("competition_entries.id"), primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"), index=True)
    theory: Mapped[Decimal | None] = mapped_column(SCORE)
    judge_scores: Mapped[list] = mapped_column(JSONType, default=list)  # [{"judge": "1号评委", "score": "88.50"}]
    practical: Mapped[Decimal | None] = mapped_column(SCORE)
    final: Mapped[Decimal | None] = mapped_column(SCORE)
    updated_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class CompetitionObjection(Base):
    """An entrant's objection during a notice period (one per entry and publication)."""

    __tablename__ = "competition_objections"
    __table_args__ = (
        CheckConstraint("status IN " + _in(OBJECTION_STATUSES), name="status"),
        UniqueConstraint("entry_id", "publication", name="uq_competition_objections_entry_publication"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("competition_entries.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    publication: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    answer: Mapped[str | None] = mapped_column(Text)
    decided_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CompetitionBrief(TimestampMixin, Base):
    """What entrants are told before each round, beside the competition's own venue and times."""

    __tablename__ = "competition_briefs"

    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"), primary_key=True)
    what_to_bring: Mapped[str | None] = mapped_column(Text)


class CompetitionReminderRun(Base):
    """A reminder that has run (``key``: round, offset and the event time it was computed from): never twice."""

    __tablename__ = "competition_reminder_runs"
    __table_args__ = (UniqueConstraint("competition_id", "key", name="uq_competition_reminder_runs_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"))
    key: Mapped[str] = mapped_column(String(64))
    sent: Mapped[int] = mapped_column(default=0)
    ran_at: Mapped[datetime] = mapped_column(default=utcnow)


class CompetitionAlert(Base):
    """A worker asked to be told when sign-up opens for competitions of ``trade``."""

    __tablename__ = "competition_alerts"
    __table_args__ = (UniqueConstraint("person_id", "trade", name="uq_competition_alerts_person_trade"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    trade: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
