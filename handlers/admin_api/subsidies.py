"""The staff side of subsidies: programmes, review, payment, bulk approval, Excel export."""

from __future__ import annotations

import io

from flask.views import MethodView

from handlers.common import Blueprint, FILE_SCHEMA, ID, current_staff, error_responses, login_required, send_download
from schemas.subsidies import (
    ApplicationFilterSchema,
    ApplicationQuerySchema,
    ApplicationSchema,
    ApplicationSummarySchema,
    ApplicationSummarySchema,
    BulkApproveSchema,
    BulkResultSchema,
    DecisionSchema,
    PaymentSchema,
    ProgramInputSchema,
    ProgramPatchSchema,
    ProgramSchema,
)
from server.extensions import db
from server.services import exports, subsidies

blp = Blueprint("admin_subsidies", __name__, url_prefix="/api/admin/v1/subsidy",
                description="Subsidy programmes and review for staff (补助审核)")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _app(app_id: int, lock: bool = False):
    return subsidies.get_staff_application(current_staff(), app_id, lock)


def _staff_view(app):
    return subsidies.application_view(app, for_staff=True)


@blp.route("/programs")
class Programs(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, ProgramSchema(many=True))
    def get(self):
        """Programmes the staff member runs or reviews for."""
        return [subsidies.program_view(p) for p in subsidies.list_programs(current_staff())]

    @login_required(blp, staff=True)
    @blp.arguments(ProgramInputSchema)
    @blp.response(201, ProgramSchema)
    @error_responses(blp, 403, 404)
    def post(self, args):
        """Create a programme (admins; money in fen)."""
        return subsidies.program_view(subsidies.save_program(current_staff(), args))


@blp.route(f"/programs/<{ID}:program_id>")
class Program(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, ProgramSchema)
    @error_responses(blp, 404)
    def get(self, program_id):
        """One programme with its counters."""
        return subsidies.program_view(subsidies.get_program(program_id, current_staff()))

    @login_required(blp, staff=True)
    @blp.arguments(ProgramPatchSchema(partial=True))
    @blp.response(200, ProgramSchema)
    @error_responses(blp, 403, 404)
    def patch(self, args, program_id):
        """Edit a programme (budget and places never below what is already approved)."""
        staff = current_staff()
        return subsidies.program_view(subsidies.save_program(staff, args, subsidies.get_program(program_id, staff)))


@blp.route(f"/programs/<{ID}:program_id>/export")
class Export(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(ApplicationFilterSchema, location="query")
    @blp.response(200, FILE_SCHEMA, content_type=XLSX)
    @error_responses(blp, 404)
    def get(self, args, program_id):
        """The programme's applications as .xlsx (Chinese headers, masked ID numbers, yuan) and a summary sheet."""
        filename, data = exports.export_program_applications(current_staff(), program_id, **args)
        return send_download(io.BytesIO(data), XLSX, filename, as_attachment=True)


@blp.route("/applications")
class Applications(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(ApplicationQuerySchema, location="query")
    @blp.response(200, ApplicationSummarySchema(many=True))
    def get(self, args):
        """Submitted applications within the staff member's organisation (phone and ID number masked)."""
        stmt = subsidies.staff_applications_query(current_staff(), **args)
        return [subsidies.application_view(a, detail=False, for_staff=True) for a in db.scalars(stmt)]


@blp.route("/applications/bulk-approve")
class BulkApprove(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(BulkApproveSchema)
    @blp.response(200, BulkResultSchema)
    def post(self, args):
        """Approve each listed application that fits (amount asked); report each that does not, with its code."""
        return subsidies.bulk_approve(current_staff(), args["ids"], args.get("reason"))


@blp.route(f"/applications/<{ID}:app_id>")
class Application(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, ApplicationSchema)
    @error_responses(blp, 404)
    def get(self, app_id):
        """One application with proofs, history and the applicant (masked)."""
        return _staff_view(_app(app_id))


@blp.route(f"/applications/<{ID}:app_id>/attachments/<{ID}:attachment_id>")
class Attachment(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, FILE_SCHEMA, content_type="application/octet-stream")
    @error_responses(blp, 404)
    def get(self, app_id, attachment_id):
        """A proof document of an application within the staff member's organisation."""
        att, path = subsidies.get_attachment(_app(app_id), attachment_id)
        return send_download(path, att.content_type, att.filename)


@blp.route(f"/applications/<{ID}:app_id>/decision")
class Decision(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(DecisionSchema)
    @blp.response(200, ApplicationSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, args, app_id):
        """approve (amount_fen, may be lower than asked), reject (reason) or return (reason, deadline)."""
        decision = args.pop("decision")
        return _staff_view(subsidies.decide_application(current_staff(), _app(app_id, True), decision, **args))


@blp.route(f"/applications/<{ID}:app_id>/payment")
class Payment(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(PaymentSchema)
    @blp.response(200, ApplicationSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, args, app_id):
        """Record the payment: paid (reference) or failed (reason)."""
        return _staff_view(subsidies.record_payment(current_staff(), _app(app_id, True), args.pop("result"), **args))
