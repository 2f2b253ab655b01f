"""Workers (people), their WeChat identities and their union membership."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, TimestampMixin
from .orgs import Organisation


class SkillLevel(str, enum.Enum):
    """The eight-level skill ladder (新八级工), lowest first."""

    APPRENTICE = "apprentice"  # 学徒工
    JUNIOR = "junior"  # 初级工
    INTERMEDIATE = "intermediate"  # 中级工
    SENIOR = "senior"  # 高级工
    TECHNICIAN = "technician"  # 技师
    SENIOR_TECHNICIAN = "senior_technician"  # 高级技师
    PRINCIPAL_TECHNICIAN = "principal_technician"  # 特级技师
    CHIEF_TECHNICIAN = "chief_technician"  # 首席技师

    @property
    def rank(self) -> int:
        return list(SkillLevel).index(self) + 1

    @property
    def label(self) -> str:
        return SKILL_LEVEL_LABELS[self]


SKILL_LEVEL_LABELS = {
    SkillLevel.APPRENTICE: "学徒工",
    SkillLevel.JUNIOR: "初级工",
    SkillLevel.INTERMEDIATE: "中级工",
    SkillLevel.SENIOR: "高级工",
    SkillLevel.TECHNICIAN: "技师",
    SkillLevel.SENIOR_TECHNICIAN: "高级技师",
    SkillLevel.PRINCIPAL_TECHNICIAN: "特级技师",
    SkillLevel.CHIEF_TECHNICIAN: "首席技师",
}


class WorkerCategory(str, enum.Enum):
    FRONTLINE = "frontline"  # 一线职工
    MIGRANT = "migrant"  # 农民工
    NEW_FORM = "new_form"  # 新就业形态劳动者
    TECHNICAL = "technical"  # 专业技术人员
    OTHER = "other"  # 其他


WORKER_CATEGORY_LABELS = {
    WorkerCategory.FRONTLINE: "一线职工",
    WorkerCategory.MIGRANT: "农民工",
    WorkerCategory.NEW_FORM: "新就业形态劳动者",
    WorkerCategory.TECHNICAL: "专业技术人员",
    WorkerCategory.OTHER: "其他",
}


class Education(str, enum.Enum):
    JUNIOR_HIGH = "junior_high"  # 初中及以下
    SENIOR_HIGH = "senior_high"  # 高中
    VOCATIONAL = "vocational"  # 中专/技校
    COLLEGE = "college"  # 大专
    BACHELOR = "bachelor"  # 本科
    POSTGRADUATE = "postgraduate"  # 研究生


EDUCATION_LABELS = {
    Education.JUNIOR_HIGH: "初中及以下",
    Education.SENIOR_HIGH: "高中",
    Education.VOCATIONAL: "中专/技校",
    Education.COLLEGE: "大专",
    Education.BACHELOR: "本科",
    Education.POSTGRADUATE: "研究生",
}


def _in(values) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


class Person(TimestampMixin, Base):
    """A worker known to UnionHub.

    One person may reach us through the Official Account (``oa_openid``) and
    the mini-program (``mp_openid``): WeChat gives each app its own openid and
    links them through ``unionid``.  The ID number is stored only encrypted
    (``id_number_enc``, Fernet) plus a keyed hash (``id_number_hash``) that
    makes "already bound to someone else" a unique-constraint question
    without ever decrypting.
    """

    __tablename__ = "people"
    __table_args__ = (
        CheckConstraint(f"skill_level IS NULL OR skill_level IN ({_in(SkillLevel)})", name="skill_level"),
        CheckConstraint(f"worker_category IS NULL OR worker_category IN ({_in(WorkerCategory)})", name="worker_category"),
        CheckConstraint(f"education IS NULL OR education IN ({_in(Education)})", name="education"),
        Index("ix_people_org_trade", "org_id", "trade"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    oa_openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    mp_openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64), unique=True)

    real_name: Mapped[str | None] = mapped_column(String(64), index=True)  # binding a follower looks it up
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    birth_date: Mapped[date | None]  # from the ID number, for age rules
    gender: Mapped[str | None] = mapped_column(String(1))  # "M" / "F", from the ID number

    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    employer: Mapped[str | None] = mapped_column(String(128))
    trade: Mapped[str | None] = mapped_column(String(64), index=True)  # 工种, e.g. 焊工
    skill_level: Mapped[str | None] = mapped_column(String(32))
    education: Mapped[str | None] = mapped_column(String(32))
    worker_category: Mapped[str | None] = mapped_column(String(32))

    is_member: Mapped[bool] = mapped_column(default=False)  # 工会会员
    member_since: Mapped[date | None]

    # Official Account reachability: unfollow makes a person unreachable there.
    oa_subscribed: Mapped[bool] = mapped_column(default=False)
    oa_subscribed_at: Mapped[datetime | None]
    oa_unsubscribed_at: Mapped[datetime | None]
    # Last push from the person that opened a customer-service allowance (a message, a menu click, a scan, a follow).
    oa_last_interaction_at: Mapped[datetime | None]
    # WeChat's customer-service allowance: messages we may still send (oa_cs_left) until oa_cs_until.
    # A message grants 20 within 48 hours; a click, scan or follow only 3 within a minute (people.grant_cs).
    oa_cs_until: Mapped[datetime | None]
    oa_cs_left: Mapped[int] = mapped_column(default=0, server_default="0")

    org: Mapped[Organisation | None] = relationship()

    @property
    def bound(self) -> bool:
        """True once the WeChat identity is linked to a member record."""
        return bool(self.real_name and self.id_number_hash and self.org_id)

    def __repr__(self) -> str:
        return f"<Person {self.id}>"
