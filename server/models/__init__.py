"""All models, imported here so that ``Base.metadata`` knows every table."""

from .audit import AuditEntry
from .base import Base, utcnow
from .competitions import COMPETITION_LEVEL_LABELS, Competition, CompetitionLevel
from .orgs import ORG_KIND_LABELS, Organisation, OrgKind
from .people import (
    EDUCATION_LABELS,
    SKILL_LEVEL_LABELS,
    WORKER_CATEGORY_LABELS,
    Education,
    Person,
    SkillLevel,
    WorkerCategory,
)
from .staff import STAFF_ROLE_LABELS, Staff, StaffRole
from .wechat import KeywordReply, WechatPush
from .subsidies import SUBSIDY_KIND_LABELS, SubsidyKind, SubsidyProgram

__all__ = [
    "AuditEntry",
    "Base",
    "COMPETITION_LEVEL_LABELS",
    "Competition",
    "CompetitionLevel",
    "EDUCATION_LABELS",
    "Education",
    "ORG_KIND_LABELS",
    "OrgKind",
    "Organisation",
    "Person",
    "SKILL_LEVEL_LABELS",
    "STAFF_ROLE_LABELS",
    "SUBSIDY_KIND_LABELS",
    "SkillLevel",
    "Staff",
    "StaffRole",
    "SubsidyKind",
    "SubsidyProgram",
    "KeywordReply",
    "WechatPush",
    "WORKER_CATEGORY_LABELS",
    "WorkerCategory",
    "utcnow",
]
