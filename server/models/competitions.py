"""Skill competitions (职业技能竞赛): enterprise, district and city level."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, TimestampMixin
from .orgs import Organisation


class CompetitionLevel(str, enum.Enum):
    ENTERPRISE = "enterprise"  # 企业级
    DISTRICT = "district"  # 区级
    CITY = "city"  # 市级


COMPETITION_LEVEL_LABELS = {
    CompetitionLevel.ENTERPRISE: "企业级",
    CompetitionLevel.DISTRICT: "区级",
    CompetitionLevel.CITY: "市级",
}


class Competition(TimestampMixin, Base):
    __tablename__ = "competitions"
    __table_args__ = (
        CheckConstraint("level IN ('enterprise', 'district', 'city')", name="level"),
        CheckConstraint("entry_mode IN ('individual', 'team')", name="entry_mode"),
        CheckConstraint("capacity > 0", name="capacity"),
        CheckConstraint("status IN ('draft', 'published', 'cancelled', 'finished')", name="status"),
        CheckConstraint("signup_start < signup_end", name="signup_window"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    trade: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[str] = mapped_column(String(16))
    organiser_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    venue: Mapped[str | None] = mapped_column(String(255))
    signup_start: Mapped[datetime]
    signup_end: Mapped[datetime]
    theory_at: Mapped[datetime | None]
    practical_at: Mapped[datetime | None]
    capacity: Mapped[int]
    org_quota: Mapped[int | None]  # places per organisation, when set
    eligibility: Mapped[dict] = mapped_column(JSONType, default=dict)
    entry_mode: Mapped[str] = mapped_column(String(16), default="individual")
    team_min: Mapped[int | None]
    team_max: Mapped[int | None]
    needs_approval: Mapped[bool] = mapped_column(default=False)
    theory_weight: Mapped[int] = mapped_column(default=30)  # percent
    practical_weight: Mapped[int] = mapped_column(default=70)
    status: Mapped[str] = mapped_column(String(16), default="draft")

    organiser: Mapped[Organisation] = relationship()
