"""The worker's inbox and subscribe-message consent reports."""

from marshmallow import fields

from .base import MAX_ID, Schema, length, value_range

_TEMPLATE_IDS = fields.List(fields.String(validate=length(1, 64)), load_default=list, validate=length(max=50))


class InboxQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=value_range(1, 100))
    before_id = fields.Integer(validate=value_range(1, MAX_ID), metadata={"description": "next page: next_before_id of the previous one"})
    unread_only = fields.Boolean(load_default=False)


class InboxMessageSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    title = fields.String()
    body = fields.String()
    link = fields.String(allow_none=True, metadata={"description": "a mini-program page path"})
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)
    read = fields.Boolean()


class InboxPageSchema(Schema):
    items = fields.List(fields.Nested(InboxMessageSchema))
    unread = fields.Integer(metadata={"description": "unread messages in the whole inbox"})
    next_before_id = fields.Integer(allow_none=True, metadata={"description": "null on the last page"})


class ReadAllSchema(Schema):
    marked = fields.Integer()
    unread = fields.Integer()


class SubscriptionReportSchema(Schema):
    """What wx.requestSubscribeMessage answered: template ids per result."""

    accepted = _TEMPLATE_IDS
    rejected = _TEMPLATE_IDS
    long_term = _TEMPLATE_IDS


class ConsentSchema(Schema):
    template_id = fields.String()
    remaining = fields.Integer(metadata={"description": "one-time consents not yet used"})
    long_term = fields.Boolean()
    rejected = fields.Boolean()


class SubscriptionsSchema(Schema):
    consents = fields.List(fields.Nested(ConsentSchema))
