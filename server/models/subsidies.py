"""Study and skill subsidy programmes (学历与技能提升补助).

Money is integer fen everywhere in code and in the database.  The counters
``committed_fen`` and ``approved_people`` are maintained by conditional
updates when applications are approved (issue: subsidy applications), so the
CHECK constraints below are the last line that no concurrency can cross.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, TimestampMixin
from .orgs import Organisation


class SubsidyKind(str, enum.Enum):
    DEGREE = "degree"  # 学历提升
    SKILL = "skill"  # 技能提升


SUBSIDY_KIND_LABELS = {SubsidyKind.DEGREE: "学历提升", SubsidyKind.SKILL: "技能提升"}


class SubsidyProgram(TimestampMixin, Base):
    __tablename__ = "subsidy_programs"
    __table_args__ = (
        CheckConstraint("per_person_cap_fen > 0", name="cap_positive"),
        CheckConstraint("budget_fen >= 0 AND committed_fen >= 0 AND committed_fen <= budget_fen", name="budget"),
        CheckConstraint("max_people >= 0 AND approved_people >= 0 AND approved_people <= max_people", name="places"),
        CheckConstraint("review_levels IN (1, 2)", name="review_levels"),
        CheckConstraint("status IN ('draft', 'open', 'closed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)  # the organisation that runs it
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)
    kinds: Mapped[list] = mapped_column(JSONType, default=lambda: [k.value for k in SubsidyKind])
    eligibility: Mapped[dict] = mapped_column(JSONType, default=dict)  # staff-editable rules
    required_documents: Mapped[dict] = mapped_column(JSONType, default=dict)  # per kind
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    per_person_cap_fen: Mapped[int]
    max_people: Mapped[int]
    budget_fen: Mapped[int]
    committed_fen: Mapped[int] = mapped_column(default=0)
    approved_people: Mapped[int] = mapped_column(default=0)
    paid_fen: Mapped[int] = mapped_column(default=0)
    review_levels: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(16), default="draft")

    org: Mapped[Organisation] = relationship()
