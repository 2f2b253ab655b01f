"""Union organisations: city federation > district/county unions > enterprise unions."""

from __future__ import annotations

import enum

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, TimestampMixin


class OrgKind(str, enum.Enum):
    CITY = "city"  # 市总工会
    DISTRICT = "district"  # 区/县总工会
    ENTERPRISE = "enterprise"  # 企业工会


ORG_KIND_LABELS = {OrgKind.CITY: "市总工会", OrgKind.DISTRICT: "区县总工会", OrgKind.ENTERPRISE: "企业工会"}


class Organisation(TimestampMixin, Base):
    """One union organisation.

    ``path`` is a materialised path of ids ("/1/4/17/") so that "this
    organisation and everything below it" is one indexed prefix query, used
    for staff scoping and audience selection.
    """

    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint("kind IN ('city', 'district', 'enterprise')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128), unique=True)
    short_name: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(255), index=True, default="")
    # The employer behind an enterprise union.
    employer_name: Mapped[str | None] = mapped_column(String(128))
    employer_credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)  # 统一社会信用代码
    industry: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(255))
    contact_name: Mapped[str | None] = mapped_column(String(64))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)

    parent: Mapped["Organisation | None"] = relationship(remote_side="Organisation.id", back_populates="children")
    children: Mapped[list["Organisation"]] = relationship(back_populates="parent")

    def is_within(self, other: "Organisation") -> bool:
        """True when this organisation is ``other`` or lies below it."""
        return self.path.startswith(other.path)

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.name}>"
