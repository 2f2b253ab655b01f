"""Subsidy programmes, applications, review and payment.  Money is integer fen (fields ending ``_fen``)."""

from marshmallow import ValidationError, fields, validates_schema
from flask_smorest.fields import Upload

from server.models import APPLICATION_STATUS_LABELS, SUBSIDY_KIND_LABELS, WORKER_CATEGORY_LABELS

from .base import MAX_ID, Schema, length, no_control_chars, one_of, value_range

KINDS = [k.value for k in SUBSIDY_KIND_LABELS]
STATUSES = [s.value for s in APPLICATION_STATUS_LABELS]
KIND_DOC = "degree 学历提升 | skill 技能提升"
STATUS_DOC = " | ".join(f"{s.value} {label}" for s, label in APPLICATION_STATUS_LABELS.items())
MAX_FEN = 1_000_000_000  # ten million yuan: beyond any programme, and two of them still fit a 32-bit integer


def _fen(**kw):
    return fields.Integer(validate=value_range(0, MAX_FEN), metadata={"description": "fen (1 yuan = 100 fen)"}, **kw)


def _text(max_len: int, min_len: int | None = None, **kw):
    kw.setdefault("allow_none", not kw.get("required"))
    return fields.String(validate=[length(min_len, max_len), no_control_chars], **kw)


def _id(**kw):
    return fields.Integer(validate=value_range(1, MAX_ID), **kw)


# -- programmes ------------------------------------------------------------------------------------

class EligibilitySchema(Schema):
    member_required = fields.Boolean(load_default=True, metadata={"description": "union members only"})
    worker_categories = fields.List(fields.String(validate=one_of([c.value for c in WORKER_CATEGORY_LABELS])),
                                    allow_none=True, load_default=None,
                                    metadata={"description": "eligible worker categories (null: any)"})
    min_membership_months = fields.Integer(allow_none=True, load_default=None, validate=value_range(0, 600))
    org_ids = fields.List(_id(), allow_none=True, load_default=None,
                          metadata={"description": "only members of these organisations and below (null: any)"})


class ProgramInputSchema(Schema):
    name = _text(128, 2, required=True)
    description = _text(20000)
    org_id = _id(metadata={"description": "the organisation running it (default: the staff member's)"})
    kinds = fields.List(fields.String(validate=one_of(KINDS)), required=True, validate=length(1, 2),
                        metadata={"description": KIND_DOC})
    eligibility = fields.Nested(EligibilitySchema, load_default=lambda: EligibilitySchema().load({}))
    required_documents = fields.Dict(keys=fields.String(validate=one_of(KINDS)),
                                     values=fields.List(_text(64, 1, allow_none=False), validate=length(max=10)),
                                     load_default=dict, metadata={"description": "kind -> document types"})
    window_start = fields.AwareDateTime(required=True)
    window_end = fields.AwareDateTime(required=True)
    per_person_cap_fen = fields.Integer(required=True, validate=value_range(1, MAX_FEN))
    max_people = fields.Integer(required=True, validate=value_range(0, 10_000_000))
    budget_fen = _fen(required=True)
    review_levels = fields.Integer(load_default=1, validate=one_of([1, 2]),
                                   metadata={"description": "2: the enterprise union first, then the programme's organisation"})
    status = fields.String(load_default="draft", validate=one_of(["draft", "open", "closed"]))


class ProgramPatchSchema(ProgramInputSchema):
    """Any subset of the programme's fields (its organisation does not change)."""

    class Meta:
        exclude = ("org_id",)


class ProgramSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)
    org_id = fields.Integer()
    org_name = fields.String()
    kinds = fields.List(fields.String(), metadata={"description": KIND_DOC})
    kind_labels = fields.Dict(keys=fields.String(), values=fields.String())
    eligibility = fields.Dict()
    eligibility_text = fields.List(fields.String(), metadata={"description": "the rules in Chinese"})
    required_documents = fields.Dict()
    required_document_labels = fields.Dict(keys=fields.String(), values=fields.String())
    window_start = fields.DateTime()
    window_end = fields.DateTime()
    accepting = fields.Boolean(metadata={"description": "open and within the window now"})
    per_person_cap_fen = fields.Integer()
    max_people = fields.Integer()
    approved_people = fields.Integer()
    places_left = fields.Integer()
    budget_fen = fields.Integer()
    committed_fen = fields.Integer()
    paid_fen = fields.Integer()
    budget_left_fen = fields.Integer()
    review_levels = fields.Integer()
    status = fields.String()


# -- applications ----------------------------------------------------------------------------------

class ApplicationFieldsSchema(Schema):
    school = _text(128)
    major = _text(128)
    study_level = _text(32, metadata={"description": "e.g. 大专, 本科"})
    certificate_name = _text(128)
    certificate_level = _text(32, metadata={"description": "e.g. 高级工"})
    certificate_number = _text(64)
    invoice_number = _text(64)
    note = _text(2000)
    requested_fen = _fen()


class ApplicationCreateSchema(ApplicationFieldsSchema):
    program_id = _id(required=True)
    kind = fields.String(required=True, validate=one_of(KINDS), metadata={"description": KIND_DOC})


class AttachmentSchema(Schema):
    id = fields.Integer()
    doc_type = fields.String()
    doc_label = fields.String()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    uploaded_at = fields.DateTime()


class AttachmentUploadSchema(Schema):
    """A multipart/form-data body."""

    doc_type = _text(64, 1, required=True,
                     metadata={"description": "one of the programme's required documents, or other"})
    file = Upload(required=True, metadata={"description": "JPEG, PNG or PDF (checked by content), size-capped"})


class EventSchema(Schema):
    at = fields.DateTime()
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    status_label = fields.String()
    review_level = fields.Integer(allow_none=True)
    amount_fen = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    actor_type = fields.String()


class ProblemSchema(Schema):
    code = fields.String()
    field = fields.String()
    message = fields.String()


class ApplicantSchema(Schema):
    id = fields.Integer()
    real_name = fields.String(allow_none=True)
    phone_masked = fields.String(allow_none=True)
    id_number_masked = fields.String(allow_none=True)
    org_id = fields.Integer(allow_none=True)
    org_name = fields.String(allow_none=True)
    worker_category = fields.String(allow_none=True)
    is_member = fields.Boolean()


class ApplicationSchema(ApplicationFieldsSchema):
    id = fields.Integer()
    program_id = fields.Integer()
    program_name = fields.String()
    kind = fields.String(metadata={"description": KIND_DOC})
    kind_label = fields.String()
    status = fields.String(metadata={"description": STATUS_DOC})
    status_label = fields.String()
    review_level = fields.Integer(metadata={"description": "the review level whose decision is awaited"})
    review_levels = fields.Integer()
    org_id = fields.Integer(allow_none=True)
    recommended_fen = fields.Integer(allow_none=True, metadata={"description": "the first review level's amount"})
    approved_fen = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "the last return, rejection or failure reason"})
    return_deadline = fields.DateTime(allow_none=True)
    payment_reference = fields.String(allow_none=True)
    created_at = fields.DateTime()
    submitted_at = fields.DateTime(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)
    attachments = fields.List(fields.Nested(AttachmentSchema))
    history = fields.List(fields.Nested(EventSchema))
    missing = fields.List(fields.Nested(ProblemSchema), metadata={"description": "what still stops submission"})
    applicant = fields.Nested(ApplicantSchema, metadata={"description": "staff API only"})


class ApplicationSummarySchema(ApplicationSchema):
    """An application in a list (no proofs, history or problems)."""

    class Meta:
        exclude = ("attachments", "history", "missing")


class WithdrawSchema(Schema):
    reason = _text(500)


# -- staff -----------------------------------------------------------------------------------------

class DecisionSchema(Schema):
    decision = fields.String(required=True, validate=one_of(["approve", "reject", "return"]))
    amount_fen = fields.Integer(validate=value_range(1, MAX_FEN),
                                metadata={"description": "approve: the approved amount (default: the amount asked)"})
    reason = _text(1000, metadata={"description": "required for reject and return"})
    return_deadline = fields.AwareDateTime(metadata={"description": "return: default 14 days from now"})

    @validates_schema
    def _reason_needed(self, data, **kwargs):
        if data["decision"] in ("reject", "return") and not (data.get("reason") or "").strip():
            raise ValidationError("请填写原因", "reason")


class PaymentSchema(Schema):
    result = fields.String(required=True, validate=one_of(["paid", "failed"]))
    reference = _text(128, metadata={"description": "paid: the bank or payment reference"})
    reason = _text(1000, metadata={"description": "failed: why"})


class BulkApproveSchema(Schema):
    ids = fields.List(_id(), required=True, validate=length(1, 500))
    reason = _text(1000)


class BulkRefusalSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    message = fields.String()
    current_state = fields.String()


class BulkApprovedSchema(Schema):
    id = fields.Integer()
    status = fields.String()
    approved_fen = fields.Integer(allow_none=True)


class BulkResultSchema(Schema):
    approved = fields.List(fields.Nested(BulkApprovedSchema))
    refused = fields.List(fields.Nested(BulkRefusalSchema))


class ApplicationFilterSchema(Schema):
    status = fields.String(load_default=None, validate=one_of(STATUSES), metadata={"description": STATUS_DOC})
    org_id = _id(load_default=None, metadata={"description": "this organisation and below"})
    date_from = fields.Date(load_default=None, metadata={"description": "submitted on or after (Asia/Shanghai)"})
    date_to = fields.Date(load_default=None, metadata={"description": "submitted on or before (Asia/Shanghai)"})


class ApplicationQuerySchema(ApplicationFilterSchema):
    program_id = _id(load_default=None)
