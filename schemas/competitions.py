"""Skill competitions: the worker's and the staff's views, sign-up, check-in and editing."""

from marshmallow import fields, validates_schema, ValidationError

from server.models import COMPETITION_LEVEL_LABELS, ENTRY_STATUS_LABELS, SKILL_LEVEL_LABELS
from server.models.competitions import TEAM_STATUS_LABELS

from .base import MAX_ID, Schema, length, one_of, value_range

LEVELS = [level.value for level in COMPETITION_LEVEL_LABELS]
ENTRY_STATUSES = [status.value for status in ENTRY_STATUS_LABELS]
SMALL = value_range(1, 100_000)
STATUS_DOC = " | ".join(f"{k.value} {v}" for k, v in ENTRY_STATUS_LABELS.items())
TEAM_STATUS_DOC = " | ".join(f"{k.value} {v}" for k, v in TEAM_STATUS_LABELS.items())


def _int(**kw):
    return fields.Integer(strict=True, **kw)


class CompetitionQuerySchema(Schema):
    trade = fields.String(validate=length(max=64), load_default=None)
    level = fields.String(validate=one_of(LEVELS), load_default=None,
                          metadata={"description": "enterprise 企业级 | district 区级 | city 市级"})


class CompetitionEligibilitySchema(Schema):
    member_required = fields.Boolean(load_default=True)
    trades = fields.List(fields.String(validate=length(1, 64)), validate=length(max=20), allow_none=True,
                         metadata={"description": "allowed trades (工种); empty: any"})
    min_skill_level = fields.String(validate=one_of([k.value for k in SKILL_LEVEL_LABELS]), allow_none=True)
    min_age = _int(validate=value_range(14, 80), allow_none=True)
    max_age = _int(validate=value_range(14, 80), allow_none=True)
    org_ids = fields.List(_int(validate=value_range(1, MAX_ID)), validate=length(max=200), allow_none=True,
                          metadata={"description": "organisations (with their subtrees) whose workers may enter; "
                                                   "default: the organiser's subtree"})

    @validates_schema
    def _ages(self, data, **kwargs):
        if data.get("min_age") and data.get("max_age") and data["min_age"] > data["max_age"]:
            raise ValidationError("最小年龄不能大于最大年龄", "max_age")


class CompetitionInputSchema(Schema):
    """Create (every required field) or PATCH (any subset); cross-field rules are checked on the result."""

    name = fields.String(required=True, validate=length(2, 128))
    trade = fields.String(required=True, validate=length(1, 64))
    level = fields.String(required=True, validate=one_of(LEVELS))
    organiser_org_id = _int(validate=value_range(1, MAX_ID),
                            metadata={"description": "default: the staff member's organisation"})
    description = fields.String(allow_none=True, validate=length(max=5000))
    venue = fields.String(allow_none=True, validate=length(max=255))
    signup_start = fields.AwareDateTime(required=True)
    signup_end = fields.AwareDateTime(required=True)
    theory_at = fields.AwareDateTime(allow_none=True)
    practical_at = fields.AwareDateTime(allow_none=True)
    capacity = _int(required=True, validate=SMALL)
    org_quota = _int(allow_none=True, validate=SMALL, metadata={"description": "places per organisation"})
    org_quota_kind = fields.String(validate=one_of(["district", "enterprise"]),
                                   metadata={"description": "the quota counts per district or enterprise union"})
    offer_hours = _int(validate=value_range(1, 24 * 14),
                       metadata={"description": "hours a promoted waiting-list entrant has to confirm"})
    eligibility = fields.Nested(CompetitionEligibilitySchema)
    entry_mode = fields.String(validate=one_of(["individual", "team"]))
    team_min = _int(allow_none=True, validate=value_range(1, 50))
    team_max = _int(allow_none=True, validate=value_range(1, 50))
    needs_approval = fields.Boolean()
    theory_weight = _int(validate=value_range(0, 100))
    practical_weight = _int(validate=value_range(0, 100))
    status = fields.String(validate=one_of(["draft", "published", "cancelled", "finished"]),
                           metadata={"description": "draft → published → cancelled | finished"})


class CompetitionPatchSchema(CompetitionInputSchema):
    """Any subset of the fields (used with ``partial=True``)."""


class EntrySchema(Schema):
    id = fields.Integer()
    competition_id = fields.Integer()
    competition_name = fields.String()
    status = fields.String(metadata={"description": STATUS_DOC})
    status_label = fields.String()
    position = fields.Integer(allow_none=True, metadata={"description": "place on the waiting list (1 = next)"})
    reason = fields.String(allow_none=True)
    offer_expires_at = fields.DateTime(allow_none=True, metadata={"description": "confirm an offer before this"})
    candidate_number = fields.String(allow_none=True, metadata={"description": "准考证号 (confirmed entries)"})
    admission_code = fields.String(allow_none=True,
                                   metadata={"description": "admission QR payload for staff to scan (confirmed entries)"})
    checked_in_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    team_id = fields.Integer(allow_none=True)
    team_name = fields.String(allow_none=True)


class StaffEntrySchema(EntrySchema):
    person_id = fields.Integer()
    real_name = fields.String(allow_none=True)
    id_number_masked = fields.String(allow_none=True)
    phone_masked = fields.String(allow_none=True)
    org_name = fields.String(allow_none=True)
    checked_in_via = fields.String(allow_none=True, metadata={"description": "staff | wechat | miniprogram"})
    entered_by_staff_id = fields.Integer(allow_none=True)


class CompetitionSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    trade = fields.String()
    level = fields.String()
    level_label = fields.String()
    organiser_org_id = fields.Integer()
    organiser_name = fields.String()
    description = fields.String(allow_none=True)
    venue = fields.String(allow_none=True)
    signup_start = fields.DateTime()
    signup_end = fields.DateTime()
    signup_open = fields.Boolean()
    theory_at = fields.DateTime(allow_none=True)
    practical_at = fields.DateTime(allow_none=True)
    capacity = fields.Integer()
    places_left = fields.Integer(metadata={"description": "places count people (a team takes one per member)"})
    waitlist_length = fields.Integer(metadata={"description": "entries on the waiting list (a team is one entry)"})
    org_quota = fields.Integer(allow_none=True)
    org_quota_kind = fields.String()
    offer_hours = fields.Integer()
    entry_mode = fields.String()
    team_min = fields.Integer(allow_none=True)
    team_max = fields.Integer(allow_none=True)
    needs_approval = fields.Boolean()
    theory_weight = fields.Integer()
    practical_weight = fields.Integer()
    status = fields.String()
    eligibility = fields.Dict(metadata={"description": "detail only"})
    eligibility_text = fields.List(fields.String(), metadata={"description": "detail only: the rules in Chinese"})
    my_status = fields.String(allow_none=True, metadata={"description": "the logged-in worker's entry status"})
    my_entry = fields.Nested(EntrySchema, allow_none=True)


class StaffCompetitionSchema(CompetitionSchema):
    venue_code = fields.String(allow_none=True, metadata={"description": "token printed in the venue's check-in QR code"})
    checkin_scene = fields.String(metadata={"description": "Official Account QR scene for the venue (checkin:<id>)"})


class CheckInSchema(Schema):
    code = fields.String(required=True, validate=length(1, 200),
                         metadata={"description": "the scanned QR content (venue code, or UHE:... admission code)"})


class CheckInResultSchema(Schema):
    first_scan = fields.Boolean(metadata={"description": "false when the entrant had already checked in"})
    entry = fields.Nested(EntrySchema)


class StaffCheckInResultSchema(CheckInResultSchema):
    entry = fields.Nested(StaffEntrySchema)


class EntryQuerySchema(Schema):
    status = fields.String(validate=one_of(ENTRY_STATUSES), load_default=None)


class OnBehalfSchema(Schema):
    person_id = _int(required=True, validate=value_range(1, MAX_ID), metadata={"description": "a worker of the officer's union"})


class StaffActionSchema(Schema):
    reason = fields.String(validate=length(max=255), load_default=None)


class ArrivalsSchema(Schema):
    expected = fields.Integer(metadata={"description": "confirmed entrants"})
    arrived = fields.Integer()
    entries = fields.List(fields.Nested(StaffEntrySchema), metadata={"description": "latest arrival first"})


class TeamInputSchema(Schema):
    name = fields.String(required=True, validate=length(1, 64), metadata={"description": "队名"})


class JoinTeamSchema(Schema):
    code = fields.String(required=True, validate=length(4, 16), metadata={"description": "the team's join code"})


class TeamMemberInputSchema(Schema):
    person_id = _int(required=True, validate=value_range(1, MAX_ID),
                     metadata={"description": "a worker of the officer's union"})


class TeamMemberSchema(Schema):
    person_id = fields.Integer()
    real_name = fields.String(allow_none=True)
    entry_id = fields.Integer()
    status = fields.String(metadata={"description": STATUS_DOC})
    status_label = fields.String()
    is_captain = fields.Boolean()
    candidate_number = fields.String(allow_none=True)


class TeamSchema(Schema):
    id = fields.Integer()
    competition_id = fields.Integer()
    competition_name = fields.String()
    name = fields.String()
    join_code = fields.String(metadata={"description": "members join with this code (POST /api/v1/teams/join)"})
    status = fields.String(metadata={"description": TEAM_STATUS_DOC})
    status_label = fields.String()
    org_id = fields.Integer()
    org_name = fields.String()
    captain_person_id = fields.Integer(allow_none=True, metadata={"description": "none for an officer's team"})
    member_count = fields.Integer()
    team_min = fields.Integer(allow_none=True)
    team_max = fields.Integer(allow_none=True)
    submitted_at = fields.DateTime(allow_none=True)
    entry_status = fields.String(allow_none=True, metadata={"description": "the members' common entry status: " + STATUS_DOC})
    position = fields.Integer(allow_none=True, metadata={"description": "the team's place on the waiting list"})
    offer_expires_at = fields.DateTime(allow_none=True)
    members = fields.List(fields.Nested(TeamMemberSchema))
