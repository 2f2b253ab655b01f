from marshmallow import fields, validates_schema, ValidationError

from .base import Schema, length, one_of, value_range


class KeywordReplySchema(Schema):
    id = fields.Integer(dump_only=True)
    keyword = fields.String(required=True, validate=length(1, 128))
    match = fields.String(load_default="exact", validate=one_of(["exact", "prefix", "regex"]),
                          metadata={"description": "exact | prefix | regex"})
    reply = fields.String(required=True, validate=length(1, 600))
    priority = fields.Integer(load_default=100, validate=value_range(0, 10000), metadata={"description": "lower wins"})
    active = fields.Boolean(load_default=True)
    org_id = fields.Integer(dump_only=True, allow_none=True)
    updated_at = fields.DateTime(dump_only=True)

    @validates_schema
    def _regex_compiles(self, data, **kwargs):
        if data.get("match") == "regex":
            from server.wechat.staff_regex import compile_pattern, error

            try:
                compile_pattern(data.get("keyword", ""))
            except error:  # (RE2: no backreferences or look-arounds; see server/wechat/staff_regex.py)
                raise ValidationError({"keyword": ["正则表达式无效（不支持反向引用和前后查找）"]})


class KeywordReplyPatchSchema(KeywordReplySchema):
    keyword = fields.String(validate=length(1, 128))
    match = fields.String(validate=one_of(["exact", "prefix", "regex"]))
    reply = fields.String(validate=length(1, 600))
    priority = fields.Integer(validate=value_range(0, 10000))
    active = fields.Boolean()


class PushSchema(Schema):
    id = fields.Integer()
    openid = fields.String()
    msg_type = fields.String()
    event = fields.String(allow_none=True)
    event_key = fields.String(allow_none=True)
    content = fields.String(allow_none=True)
    bot = fields.String(allow_none=True)
    reply_type = fields.String(allow_none=True)
    reply_preview = fields.String(allow_none=True)
    duration_ms = fields.Float(allow_none=True)
    encrypted = fields.Boolean()
    received_at = fields.DateTime()


class PushQuerySchema(Schema):
    openid = fields.String(load_default=None)
    bot = fields.String(load_default=None)
    limit = fields.Integer(load_default=50, validate=value_range(1, 500))


class BindingCodeSchema(Schema):
    code = fields.String(metadata={"description": "six digits; the worker sends “绑定 <code>” to the Official Account"})
    expires_in = fields.Integer()
