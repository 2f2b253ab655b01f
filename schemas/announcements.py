"""Announcements (公告) for staff and workers, union group bots, and the operators' queue views."""

import re
from urllib.parse import parse_qs, urlsplit

from marshmallow import ValidationError, fields, pre_load, validates

from server.models import SKILL_LEVEL_LABELS, WORKER_CATEGORY_LABELS

from .base import MAX_ID, Schema, length, no_control_chars, one_of, value_range

STATUS_DOC = "draft 草稿 | scheduled 已定时 | sending 发送中 | paused 已暂停 | cancelled 已取消 | done 已完成"
_LINK = re.compile(r"^/?[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*(\?[A-Za-z0-9_\-=&%.]*)?$")


def _ids(max_len: int = 200, **kw):
    return fields.List(fields.Integer(validate=value_range(1, MAX_ID)), validate=length(1, max_len), **kw)


def _text(max_len: int, min_len: int | None = None, **kw):
    return fields.String(validate=[length(min_len, max_len), no_control_chars], **kw)


class AudienceSchema(Schema):
    all = fields.Boolean(metadata={"description": "everyone in the author organisation's subtree (the whole city for the federation)"})
    org_ids = _ids(metadata={"description": "people of these organisations"})
    include_sub_orgs = fields.Boolean(load_default=False, metadata={"description": "with org_ids: and every organisation below them"})
    trades = fields.List(_text(64, 1), validate=length(1, 100), metadata={"description": "工种, e.g. 焊工"})
    skill_levels = fields.List(fields.String(validate=one_of([s.value for s in SKILL_LEVEL_LABELS])), validate=length(1, 8))
    worker_categories = fields.List(fields.String(validate=one_of([c.value for c in WORKER_CATEGORY_LABELS])),
                                    validate=length(1, 5))
    competition_id = fields.Integer(validate=value_range(1, MAX_ID), metadata={"description": "the competition's active entrants"})
    program_id = fields.Integer(validate=value_range(1, MAX_ID), metadata={"description": "the programme's applicants (submitted)"})
    not_read_announcement_id = fields.Integer(validate=value_range(1, MAX_ID),
                                              metadata={"description": "recipients of that announcement who have not opened it"})


class AnnouncementInputSchema(Schema):
    title = _text(64, 1, required=True)
    body = _text(5000, 1, required=True)
    link = _text(255, allow_none=True, metadata={"description": "a mini-program page path, e.g. pages/news/detail?id=3"})
    urgent = fields.Boolean(load_default=False, metadata={"description": "sent during quiet hours too"})
    audience = fields.Nested(AudienceSchema, required=True)

    @pre_load
    def _strip(self, data, **kwargs):
        if isinstance(data, dict):
            data = {k: v.strip() if isinstance(v, str) and k in ("title", "body", "link") else v for k, v in data.items()}
        return data

    @validates("title")
    def _title(self, value, **kwargs):
        if "\n" in value or "\r" in value:
            raise ValidationError("标题不能换行")

    @validates("link")
    def _link(self, value, **kwargs):
        if value and not _LINK.match(value):
            raise ValidationError("应为小程序页面路径，如 pages/news/detail?id=3")


class SendSchema(Schema):
    at = fields.AwareDateTime(allow_none=True, load_default=None,
                              metadata={"description": "send at this time (omit to send now)"})


class AnnouncementSchema(Schema):
    id = fields.Integer()
    org_id = fields.Integer()
    title = fields.String()
    body = fields.String()
    link = fields.String(allow_none=True)
    urgent = fields.Boolean()
    audience = fields.Dict()
    status = fields.String(metadata={"description": STATUS_DOC})
    status_label = fields.String()
    scheduled_at = fields.DateTime(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    recipients = fields.Integer(metadata={"description": "people turned into deliveries so far"})
    fanout_done = fields.Boolean()
    totals = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "status -> deliveries"})
    progress = fields.Dict(keys=fields.String(), values=fields.Dict(),
                           metadata={"description": "channel -> {queued, sending, sent, failed, skipped, ...}"})


class AnnouncementQuerySchema(Schema):
    status = fields.String(validate=one_of(["draft", "scheduled", "sending", "paused", "cancelled", "done"]))
    limit = fields.Integer(load_default=50, validate=value_range(1, 200))
    offset = fields.Integer(load_default=0, validate=value_range(0, MAX_ID))


class PreviewSchema(Schema):
    recipients = fields.Integer()
    channels = fields.Dict(keys=fields.String(), values=fields.Integer(),
                           metadata={"description": "channel -> people it will reach first on it (all get an inbox copy)"})
    groups = fields.Integer(metadata={"description": "union group bots it will post to"})


class FailureSchema(Schema):
    delivery_id = fields.Integer()
    person_id = fields.Integer(allow_none=True)
    org_id = fields.Integer(allow_none=True)
    channel = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    error_code = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)


class ReportSchema(Schema):
    announcement_id = fields.Integer()
    status = fields.String()
    totals = fields.Dict(keys=fields.String(), values=fields.Integer())
    reasons = fields.List(fields.Dict(), metadata={"description": "[{channel, status, error_code, reason, count}]"})
    failures = fields.List(fields.Nested(FailureSchema))


class ReportQuerySchema(Schema):
    limit = fields.Integer(load_default=200, validate=value_range(1, 1000))
    offset = fields.Integer(load_default=0, validate=value_range(0, MAX_ID))


class WebhookInputSchema(Schema):
    key = _text(512, 8, required=True, metadata={"description": "the bot's key, or its whole webhook URL"})
    msgtype = fields.String(load_default="markdown", validate=one_of(["text", "markdown"]))

    @pre_load
    def _key_from_url(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("key"), str) and "key=" in data["key"]:
            data = {**data, "key": (parse_qs(urlsplit(data["key"].strip()).query).get("key") or [""])[0]}
        return data

    @validates("key")
    def _key(self, value, **kwargs):
        if not re.fullmatch(r"[A-Za-z0-9\-_]{8,128}", value):
            raise ValidationError("机器人 key 格式不正确")


class WebhookSchema(Schema):
    org_id = fields.Integer()
    key_masked = fields.String()
    msgtype = fields.String()
    active = fields.Boolean()
    last_error = fields.String(allow_none=True)


class PublicAnnouncementSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    body = fields.String()
    link = fields.String(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    read = fields.Boolean()


class PageQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=value_range(1, 100))
    offset = fields.Integer(load_default=0, validate=value_range(0, MAX_ID))


class OpsQuerySchema(Schema):
    hours = fields.Integer(load_default=24, validate=value_range(1, 24 * 30))
