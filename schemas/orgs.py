from marshmallow import fields

from .base import MAX_ID, Schema, one_of, value_range


class OrgSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    short_name = fields.String(dump_only=True, allow_none=True)
    kind = fields.String(dump_only=True, metadata={"description": "city | district | enterprise"})
    kind_label = fields.String(dump_only=True)
    parent_id = fields.Integer(dump_only=True, allow_none=True)
    employer_name = fields.String(dump_only=True, allow_none=True)
    industry = fields.String(dump_only=True, allow_none=True)


class OrgQuerySchema(Schema):
    kind = fields.String(load_default=None, validate=one_of(["city", "district", "enterprise"]), metadata={"description": "city | district | enterprise"})
    parent_id = fields.Integer(load_default=None, validate=value_range(1, MAX_ID))
    q = fields.String(load_default=None, metadata={"description": "name contains"})
