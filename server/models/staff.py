"""Staff accounts of union organisations, with roles scoped to their organisation."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, TimestampMixin
from .orgs import Organisation


class StaffRole(str, enum.Enum):
    ADMIN = "admin"  # everything within the organisation's subtree, incl. staff accounts
    REVIEWER = "reviewer"  # reviews subsidy applications and competition entries
    FINANCE = "finance"  # records payments
    ORGANISER = "organiser"  # runs competitions: check-in, scores
    OFFICER = "officer"  # enterprise union officer: signs up own workers, first-level review
    VIEWER = "viewer"  # read-only reports


STAFF_ROLE_LABELS = {
    StaffRole.ADMIN: "管理员",
    StaffRole.REVIEWER: "审核员",
    StaffRole.FINANCE: "财务",
    StaffRole.ORGANISER: "赛事组织",
    StaffRole.OFFICER: "企业工会干部",
    StaffRole.VIEWER: "只读",
}


class Staff(TimestampMixin, Base):
    """A staff account.  It sees only its organisation and what lies below it."""

    __tablename__ = "staff"
    __table_args__ = (
        CheckConstraint("role IN (" + ", ".join(f"'{r.value}'" for r in StaffRole) + ")", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(64))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]

    org: Mapped[Organisation] = relationship()

    def __repr__(self) -> str:
        return f"<Staff {self.username}>"
