"""Study and skill subsidy programmes (学历与技能提升补助).

Money is integer fen everywhere in code and in the database.  The counters
``committed_fen`` and ``approved_people`` are maintained by conditional
updates when applications are approved (issue: subsidy applications), so the
CHECK constraints below are the last line that no concurrency can cross.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, TimestampMixin, utcnow
from .orgs import Organisation
from .people import Person


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


class ApplicationStatus(str, enum.Enum):
    DRAFT = "draft"
    SUBMITTED = "submitted"  # waiting for the first (or only) review level
    UNDER_REVIEW = "under_review"  # passed the enterprise union, waiting for the city
    RETURNED = "returned"  # sent back for more material, until return_deadline
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"  # returned and not resubmitted before the deadline
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"


APPLICATION_STATUS_LABELS = {
    ApplicationStatus.DRAFT: "草稿",
    ApplicationStatus.SUBMITTED: "已提交",
    ApplicationStatus.UNDER_REVIEW: "审核中",
    ApplicationStatus.RETURNED: "退回补充材料",
    ApplicationStatus.APPROVED: "已核准",
    ApplicationStatus.REJECTED: "未通过",
    ApplicationStatus.WITHDRAWN: "已撤回",
    ApplicationStatus.EXPIRED: "已过期",
    ApplicationStatus.PAID: "已发放",
    ApplicationStatus.PAYMENT_FAILED: "发放失败",
}

#: Statuses in which an application holds its certificate and invoice numbers.
_RELEASED = "status NOT IN ('draft', 'withdrawn', 'rejected', 'expired')"


def _claim_index(column: str) -> Index:
    """A certificate or invoice number can be claimed by one live application only, across people."""
    return Index(f"uq_subsidy_applications_{column}", column, unique=True,
                 sqlite_where=text(_RELEASED), postgresql_where=text(_RELEASED))


class SubsidyApplication(TimestampMixin, Base):
    __tablename__ = "subsidy_applications"
    __table_args__ = (
        CheckConstraint("status IN (" + ", ".join(f"'{s.value}'" for s in ApplicationStatus) + ")", name="status"),
        CheckConstraint("kind IN ('degree', 'skill')", name="kind"),
        CheckConstraint("requested_fen >= 0", name="requested"),
        CheckConstraint("approved_fen IS NULL OR (approved_fen > 0 AND approved_fen <= requested_fen)", name="approved"),
        CheckConstraint("review_level IN (1, 2)", name="review_level"),
        _claim_index("certificate_key"),
        _claim_index("invoice_key"),
        Index("ix_subsidy_applications_program_status", "program_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("subsidy_programs.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)  # the applicant's union
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ApplicationStatus.DRAFT.value)
    review_level: Mapped[int] = mapped_column(default=1)  # the level whose decision is awaited
    # Degree study: school, major and level.  Skill certificate: name, level and number.
    school: Mapped[str | None] = mapped_column(String(128))
    major: Mapped[str | None] = mapped_column(String(128))
    study_level: Mapped[str | None] = mapped_column(String(32))
    certificate_name: Mapped[str | None] = mapped_column(String(128))
    certificate_level: Mapped[str | None] = mapped_column(String(32))
    certificate_number: Mapped[str | None] = mapped_column(String(64))
    invoice_number: Mapped[str | None] = mapped_column(String(64))
    # Normalised numbers, unique among live applications (see _claim_index).
    certificate_key: Mapped[str | None] = mapped_column(String(64))
    invoice_key: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    requested_fen: Mapped[int] = mapped_column(default=0)
    recommended_fen: Mapped[int | None]  # the first review level's amount
    approved_fen: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(Text)  # the last return / rejection / failure reason
    return_deadline: Mapped[datetime | None] = mapped_column(index=True)
    payment_reference: Mapped[str | None] = mapped_column(String(128))
    submitted_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]

    program: Mapped[SubsidyProgram] = relationship()
    person: Mapped[Person] = relationship()
    org: Mapped[Organisation | None] = relationship()
    attachments: Mapped[list["ApplicationAttachment"]] = relationship(
        back_populates="application", order_by="ApplicationAttachment.id")
    events: Mapped[list["ApplicationEvent"]] = relationship(order_by="ApplicationEvent.id")


class ApplicationAttachment(Base):
    """A proof document, stored under UPLOAD_DIR with a random name."""

    __tablename__ = "subsidy_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("subsidy_applications.id"), index=True)
    doc_type: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_name: Mapped[str] = mapped_column(String(64), unique=True)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    application: Mapped[SubsidyApplication] = relationship(back_populates="attachments")


class ApplicationEvent(Base):
    """One step of an application's history, as the worker sees it."""

    __tablename__ = "subsidy_application_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("subsidy_applications.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_type: Mapped[str] = mapped_column(String(16))  # staff | person | system
    actor_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    review_level: Mapped[int | None]
    amount_fen: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(Text)


class SubsidyAllowance(Base):
    """A person's approved total in one programme: the row approvals lock and bump (per-person cap)."""

    __tablename__ = "subsidy_allowances"
    __table_args__ = (
        UniqueConstraint("program_id", "person_id"),
        CheckConstraint("approved_fen >= 0", name="approved"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("subsidy_programs.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    approved_fen: Mapped[int] = mapped_column(default=0)
