"""Login requests and answers (mini-program and staff)."""

from marshmallow import fields

from .base import Schema, length, no_control_chars


class LoginSchema(Schema):
    code = fields.String(required=True, validate=[length(1, 128), no_control_chars], metadata={"description": "the code from wx.login"})


class LoginUserSchema(Schema):
    id = fields.Integer()
    bound = fields.Boolean(metadata={"description": "true once the profile is linked to a member record"})


class TokenSchema(Schema):
    token = fields.String(metadata={"description": "send as Authorization: Bearer <token>"})
    expires_in = fields.Integer(metadata={"description": "seconds"})


class LoginResultSchema(TokenSchema):
    user = fields.Nested(LoginUserSchema)


class StaffLoginSchema(Schema):
    username = fields.String(required=True, validate=[length(1, 64), no_control_chars])
    password = fields.String(required=True, validate=length(1, 128), load_only=True)


class StaffSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String(allow_none=True)
    role = fields.String()
    org_id = fields.Integer()
    org_name = fields.String()


class StaffLoginResultSchema(TokenSchema):
    staff = fields.Nested(StaffSchema)
