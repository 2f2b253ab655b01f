"""Outgoing messages: deliveries, subscribe-message consent, announcements, union group bots.

Every external send is a ``Delivery`` row before any HTTP call, with a
unique ``dedup_key`` that makes enqueuing twice, retrying, or a worker
killed mid-send harmless.  Statuses:

    pending   waiting to be sent (``not_before`` holds it for quiet hours or back-off)
    sending   claimed by a worker (``claimed_at``); a claim older than the lease is
              "unknown" — it may or may not have reached WeChat, so it is reported,
              never sent again (at most once)
    sent      WeChat accepted it (``wechat_msgid`` for template messages)
    delivered / blocked   a TEMPLATESENDJOBFINISH receipt said so
    failed    permanently refused (``error_code``) or out of retries
    skipped   not sendable on this channel (``skip_reason``), e.g. no consent left
    cancelled the announcement was cancelled before it was sent
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, TimestampMixin, utcnow


class Channel(str, enum.Enum):
    INBOX = "inbox"  # the mini-program's inbox (always gets a copy)
    OA_TEMPLATE = "oa_template"  # Official Account template message (followers)
    MP_SUBSCRIBE = "mp_subscribe"  # mini-program subscribe message (needs consent)
    OA_CUSTOM = "oa_custom"  # customer-service message (inside the 48-hour window)
    WECOM_GROUP = "wecom_group"  # an organisation's WeCom group bot


class DeliveryStatus(str, enum.Enum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    BLOCKED = "blocked"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


FINAL_STATUSES = ("sent", "delivered", "blocked", "failed", "skipped", "unknown", "cancelled")


def _in(enum_cls) -> str:
    return ", ".join(f"'{v.value}'" for v in enum_cls)


class Delivery(TimestampMixin, Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(f"channel IN ({_in(Channel)})", name="channel"),
        CheckConstraint(f"status IN ({_in(DeliveryStatus)})", name="status"),
        CheckConstraint("person_id IS NOT NULL OR org_id IS NOT NULL", name="recipient"),
        Index("ix_deliveries_status_not_before", "status", "not_before"),
        Index("ix_deliveries_announcement_channel_status", "announcement_id", "channel", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))  # group-bot posts
    announcement_id: Mapped[int | None] = mapped_column(ForeignKey("announcements.id"))
    kind: Mapped[str] = mapped_column(String(48))  # message kind, see server/services/messages.py
    channel: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    urgent: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    error_code: Mapped[int | None]
    error_message: Mapped[str | None] = mapped_column(String(255))
    skip_reason: Mapped[str | None] = mapped_column(String(64))
    wechat_msgid: Mapped[str | None] = mapped_column(String(64), index=True)


class SubscribeConsent(TimestampMixin, Base):
    """What a worker allowed for one subscribe-message template.

    ``remaining`` counts one-time consents not yet used (each allows one
    message); ``long_term`` marks a permanent subscription; ``rejected``
    records the latest refusal ("always reject" in WeChat's popup).
    """

    __tablename__ = "subscribe_consents"
    __table_args__ = (
        UniqueConstraint("person_id", "template_id"),
        CheckConstraint("remaining >= 0", name="remaining"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    template_id: Mapped[str] = mapped_column(String(64))
    remaining: Mapped[int] = mapped_column(default=0)
    long_term: Mapped[bool] = mapped_column(default=False)
    rejected: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str | None] = mapped_column(String(32))  # mini-program report | oa event


class AnnouncementStatus(str, enum.Enum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class Announcement(TimestampMixin, Base):
    """A broadcast staff write: title, body, optional mini-program link, an audience, a schedule."""

    __tablename__ = "announcements"
    __table_args__ = (CheckConstraint(f"status IN ({_in(AnnouncementStatus)})", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)  # the author's organisation
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    title: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(255))  # a mini-program page path
    audience: Mapped[dict] = mapped_column(JSONType, default=dict)
    urgent: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default=AnnouncementStatus.DRAFT.value)
    scheduled_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]  # when it appears in GET /api/v1/announcements
    fanout_cursor: Mapped[int] = mapped_column(default=0)  # last person id turned into deliveries
    fanout_done: Mapped[bool] = mapped_column(default=False)
    recipients: Mapped[int] = mapped_column(default=0)


class AnnouncementRead(Base):
    """A worker opened an announcement (audience "has not read announcement N")."""

    __tablename__ = "announcement_reads"
    __table_args__ = (UniqueConstraint("announcement_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcements.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    read_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrgWebhook(TimestampMixin, Base):
    """An organisation's WeCom group bot; a broadcast to the organisation also posts there once."""

    __tablename__ = "org_webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), unique=True)
    webhook_key: Mapped[str] = mapped_column(String(128))
    msgtype: Mapped[str] = mapped_column(String(16), default="markdown")  # text | markdown
    active: Mapped[bool] = mapped_column(default=True)
    last_error: Mapped[str | None] = mapped_column(String(255))
