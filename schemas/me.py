"""The worker's own profile."""

from marshmallow import ValidationError, fields

from server.models import EDUCATION_LABELS, SKILL_LEVEL_LABELS, WORKER_CATEGORY_LABELS
from server.security import validate_id_number, validate_phone

from .base import MAX_ID, Schema, length, no_control_chars, one_of, value_range


def _check(validator):
    def run(value):
        message = validator(value)
        if message:
            raise ValidationError(message)

    return run


def _choice(labels: dict):
    return fields.String(allow_none=True, validate=one_of([k.value for k in labels]),
                         metadata={"description": " | ".join(f"{k.value} {v}" for k, v in labels.items())})


class ProfileUpdateSchema(Schema):
    """Every field optional; a field sent as null is cleared (except the ID number)."""

    real_name = fields.String(validate=[length(2, 32), no_control_chars])
    phone = fields.String(validate=_check(validate_phone))
    id_number = fields.String(validate=_check(validate_id_number), load_only=True,
                              metadata={"description": "18 digits with the check digit; stored encrypted, shown masked"})
    org_id = fields.Integer(validate=value_range(1, MAX_ID), metadata={"description": "an enterprise union from GET /api/v1/orgs?kind=enterprise"})
    employer = fields.String(allow_none=True, validate=[length(max=128), no_control_chars])
    trade = fields.String(allow_none=True, validate=[length(max=64), no_control_chars])
    skill_level = _choice(SKILL_LEVEL_LABELS)
    education = _choice(EDUCATION_LABELS)
    worker_category = _choice(WORKER_CATEGORY_LABELS)


class ProfileSchema(Schema):
    id = fields.Integer()
    bound = fields.Boolean()
    real_name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    id_number_masked = fields.String(allow_none=True, metadata={"description": "first 3 and last 4 characters"})
    gender = fields.String(allow_none=True)
    birth_date = fields.Date(allow_none=True)
    org_id = fields.Integer(allow_none=True)
    org_name = fields.String(allow_none=True)
    employer = fields.String(allow_none=True)
    trade = fields.String(allow_none=True)
    skill_level = fields.String(allow_none=True)
    education = fields.String(allow_none=True)
    worker_category = fields.String(allow_none=True)
    is_member = fields.Boolean()
    member_since = fields.Date(allow_none=True)
