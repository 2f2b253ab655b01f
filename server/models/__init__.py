"""All models, imported here so that ``Base.metadata`` knows every table."""

from .audit import AuditEntry
from .base import Base, utcnow
from .competitions import (
    COMPETITION_LEVEL_LABELS,
    ENTRY_STATUS_LABELS,
    Competition,
    CompetitionEntry,
    CompetitionLevel,
    EntryStatus,
)
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
from .subsidies import (
    APPLICATION_STATUS_LABELS,
    SUBSIDY_KIND_LABELS,
    ApplicationAttachment,
    ApplicationEvent,
    ApplicationStatus,
    SubsidyAllowance,
    SubsidyApplication,
    SubsidyKind,
    SubsidyProgram,
)
from .inbox import InboxMessage
from .competition_results import (
    CompetitionAlert,
    CompetitionBrief,
    CompetitionObjection,
    CompetitionReminderRun,
    CompetitionScore,
    CompetitionScoring,
)
from .messaging import (
    Announcement,
    AnnouncementRead,
    AnnouncementStatus,
    Channel,
    Delivery,
    DeliveryStatus,
    OrgWebhook,
    SubscribeConsent,
)

__all__ = [
    "CompetitionAlert",
    "CompetitionBrief",
    "CompetitionObjection",
    "CompetitionReminderRun",
    "CompetitionScore",
    "CompetitionScoring",
    "Announcement",
    "AnnouncementRead",
    "AnnouncementStatus",
    "Channel",
    "Delivery",
    "DeliveryStatus",
    "OrgWebhook",
    "SubscribeConsent",
    "APPLICATION_STATUS_LABELS",
    "ApplicationAttachment",
    "ApplicationEvent",
    "ApplicationStatus",
    "InboxMessage",
    "SubsidyAllowance",
    "SubsidyApplication",
    "AuditEntry",
    "Base",
    "COMPETITION_LEVEL_LABELS",
    "Competition",
    "CompetitionLevel",
    "CompetitionEntry",
    "ENTRY_STATUS_LABELS",
    "EntryStatus",
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
