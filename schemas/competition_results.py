"""Competition scores, results, objections, reminders' brief, trade alerts and exports."""

from __future__ import annotations

from decimal import Decimal

from marshmallow import ValidationError, fields, validates, validates_schema

from server.models.competition_results import OBJECTION_STATUS_LABELS, RESULT_STATE_LABELS

from .base import Schema, length, no_control_chars, one_of, value_range

STATE_DOC = " → ".join(f"{k} {v}" for k, v in RESULT_STATE_LABELS.items())


def _score_places(value: Decimal) -> None:
    if value.as_tuple().exponent < -2:
        raise ValidationError("成绩最多保留两位小数")


def score_field(metadata: dict | None = None, **kw):
    # A number in the document: apispec would print the Decimal bounds as strings ("100").
    metadata = {"minimum": 0, "maximum": 100, **(metadata or {})}
    return fields.Decimal(validate=[value_range(0, 100), _score_places], allow_nan=False, as_string=True,
                          metadata=metadata, **kw)


def _text(max_len: int, **kw):
    return fields.String(validate=[length(1, max_len), no_control_chars], **kw)


class JudgeScoreSchema(Schema):
    judge = _text(32, required=True, metadata={"description": "the judge, e.g. 1号评委"})
    score = score_field(required=True)


class ScoresInputSchema(Schema):
    """Either part or both; a part left out keeps its stored value."""

    theory = score_field(allow_none=True, metadata={"description": "0–100, two decimals at most; null clears it"})
    practical = fields.List(fields.Nested(JudgeScoreSchema), validate=length(max=15),
                            metadata={"description": "every practical judge's score (replaces the stored list)"})

    @validates("practical")
    def _distinct_judges(self, value, **kwargs):
        judges = [j["judge"].strip() for j in value if "judge" in j]
        if len(set(judges)) != len(judges):
            raise ValidationError("评委不能重复")

    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("请至少填写理论成绩或实操成绩", "theory")


class ScoringSettingsSchema(Schema):
    drop_extremes = fields.Boolean(metadata={"description": "with ≥3 judges, drop the highest and lowest score"})
    notice_days = fields.Integer(strict=True, validate=value_range(1, 30),
                                 metadata={"description": "default length of the public notice (公示), days"})


class PublishSchema(Schema):
    notice_days = fields.Integer(strict=True, validate=value_range(1, 30), load_default=None,
                                 metadata={"description": "公示 days (default: the competition's setting, 7)"})


class ScoringStateSchema(Schema):
    competition_id = fields.Integer()
    state = fields.String(metadata={"description": STATE_DOC + "（异议成立时 published → scoring）"})
    state_label = fields.String()
    drop_extremes = fields.Boolean()
    notice_days = fields.Integer()
    publication = fields.Integer(metadata={"description": "how many times the results were published"})
    theory_weight = fields.Integer()
    practical_weight = fields.Integer()
    locked_at = fields.DateTime(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    notice_ends_at = fields.DateTime(allow_none=True, metadata={"description": "end of the public notice"})
    finalized_at = fields.DateTime(allow_none=True)
    open_objections = fields.Integer()


class JudgeScoreOutSchema(Schema):
    judge = fields.String()
    score = fields.String()


class StaffResultRowSchema(Schema):
    rank = fields.Integer(allow_none=True, metadata={"description": "1, 2, 2, 4…; null: no complete score"})
    entry_id = fields.Integer()
    person_id = fields.Integer()
    candidate_number = fields.String(allow_none=True)
    real_name = fields.String(allow_none=True)
    id_number_masked = fields.String(allow_none=True)
    org_name = fields.String(allow_none=True)
    checked_in = fields.Boolean()
    theory = fields.Decimal(as_string=True, allow_none=True)
    judge_scores = fields.List(fields.Nested(JudgeScoreOutSchema))
    practical = fields.Decimal(as_string=True, allow_none=True, metadata={"description": "judges' mean"})
    final = fields.Decimal(as_string=True, allow_none=True)


class StaffResultsSchema(ScoringStateSchema):
    rows = fields.List(fields.Nested(StaffResultRowSchema), metadata={"description": "ranked, unranked last"})


class PublicResultRowSchema(Schema):
    rank = fields.Integer(allow_none=True)
    name = fields.String(metadata={"description": "masked, e.g. 张*明"})
    org_name = fields.String(allow_none=True)
    theory = fields.Decimal(as_string=True, allow_none=True)
    practical = fields.Decimal(as_string=True, allow_none=True)
    final = fields.Decimal(as_string=True, allow_none=True)
    mine = fields.Boolean(metadata={"description": "the logged-in worker's own row"})


class ObjectionSchema(Schema):
    id = fields.Integer()
    competition_id = fields.Integer()
    entry_id = fields.Integer()
    publication = fields.Integer()
    text = fields.String()
    status = fields.String(metadata={"description": " | ".join(f"{k} {v}" for k, v in OBJECTION_STATUS_LABELS.items())})
    status_label = fields.String()
    answer = fields.String(allow_none=True)
    created_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)


class StaffObjectionSchema(ObjectionSchema):
    person_id = fields.Integer()
    real_name = fields.String(allow_none=True)
    candidate_number = fields.String(allow_none=True)
    decided_by_staff_id = fields.Integer(allow_none=True)


class PublicResultsSchema(Schema):
    competition_id = fields.Integer()
    competition_name = fields.String()
    state = fields.String(metadata={"description": "published 公示中 | final 已确定"})
    state_label = fields.String()
    theory_weight = fields.Integer()
    practical_weight = fields.Integer()
    published_at = fields.DateTime(allow_none=True)
    notice_ends_at = fields.DateTime(allow_none=True)
    finalized_at = fields.DateTime(allow_none=True)
    rows = fields.List(fields.Nested(PublicResultRowSchema))
    mine = fields.Nested(PublicResultRowSchema, allow_none=True)
    my_objection = fields.Nested(ObjectionSchema, allow_none=True)
    can_object = fields.Boolean(metadata={"description": "the worker may still raise an objection"})


class ObjectionInputSchema(Schema):
    text = _text(500, required=True, metadata={"description": "the objection, at most 500 characters"})

    @validates("text")
    def _not_blank(self, value, **kwargs):
        if not value.strip():
            raise ValidationError("请填写异议内容")


class ObjectionQuerySchema(Schema):
    status = fields.String(validate=one_of(list(OBJECTION_STATUS_LABELS)), load_default=None)


class ObjectionDecisionSchema(Schema):
    decision = fields.String(required=True, validate=one_of(["upheld", "dismissed"]),
                             metadata={"description": "upheld 异议成立（成绩解锁更正）| dismissed 异议不成立"})
    answer = _text(500, required=True, metadata={"description": "the answer the entrant is sent"})

    @validates("answer")
    def _not_blank(self, value, **kwargs):
        if not value.strip():
            raise ValidationError("请填写答复内容")


class BriefSchema(Schema):
    what_to_bring = fields.String(required=True, allow_none=True, validate=[length(max=500), no_control_chars],
                                  metadata={"description": "what entrants bring, sent in the round reminders"})


class AlertsSchema(Schema):
    trades = fields.List(_text(64), required=True, validate=length(max=20),
                         metadata={"description": "trades (工种) to be told about when sign-up opens"})


class ExportQuerySchema(Schema):
    kind = fields.String(required=True, validate=one_of(["entries", "checkins", "results"]),
                         metadata={"description": "entries 报名名单 | checkins 签到表 | results 成绩表"})
