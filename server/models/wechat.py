"""What the Official Account receives, and the keyword replies staff maintain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, TimestampMixin, utcnow


class WechatPush(Base):
    """One push from WeChat to /wechat, as received and as answered.

    ``dedup_key`` is FromUserName + MsgId (messages) or FromUserName +
    CreateTime + Event (events); WeChat's retries of the same push share it,
    so each push is stored once.
    """

    __tablename__ = "wechat_pushes"
    __table_args__ = (Index("ix_wechat_pushes_openid_received", "openid", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(160), unique=True)
    openid: Mapped[str] = mapped_column(String(64))
    msg_type: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64), index=True)
    event_key: Mapped[str | None] = mapped_column(String(255))
    msg_id: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[str | None] = mapped_column(Text)  # text content, trimmed
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)  # every field WeChat sent
    encrypted: Mapped[bool] = mapped_column(default=False)
    bot: Mapped[str | None] = mapped_column(String(64))
    reply_type: Mapped[str | None] = mapped_column(String(32))  # text | news | success | deferred
    reply_preview: Mapped[str | None] = mapped_column(String(255))
    duration_ms: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(String(255))
    created_at_wechat: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class KeywordReply(TimestampMixin, Base):
    """A keyword answer staff edit without a deploy (policy text, hotline numbers).

    ``match`` is exact, prefix or regex; lower ``priority`` wins.
    """

    __tablename__ = "keyword_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    keyword: Mapped[str] = mapped_column(String(128))
    match: Mapped[str] = mapped_column(String(8), default="exact")
    reply: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(default=100)
    active: Mapped[bool] = mapped_column(default=True)
    org_id: Mapped[int | None]
