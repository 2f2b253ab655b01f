"""The worker's side of study and skill subsidies: programmes, applications, proofs."""

from __future__ import annotations

from flask.views import MethodView

from handlers.common import (
    Blueprint,
    FILE_SCHEMA,
    ID,
    MultipartParser,
    current_person,
    error_responses,
    login_required,
    send_download,
)
from schemas.subsidies import (
    ApplicationCreateSchema,
    ApplicationFieldsSchema,
    ApplicationSchema,
    ApplicationSummarySchema,
    AttachmentSchema,
    AttachmentUploadSchema,
    ProgramSchema,
    WithdrawSchema,
)
from server.services import subsidies

blp = Blueprint("mp_subsidies", __name__, url_prefix="/api/v1/subsidy",
                description="Study and skill subsidies (学历与技能提升补助)")
blp.ARGUMENTS_PARSER = MultipartParser()  # the proof upload: one multipart body with doc_type and file


def _mine(app_id: int, lock: bool = False):
    return subsidies.get_person_application(current_person(), app_id, lock)


@blp.route("/programs")
class Programs(MethodView):
    @blp.response(200, ProgramSchema(many=True))
    def get(self):
        """Open programmes: kinds, eligibility, window, per-person cap, places and money left."""
        return [subsidies.program_view(p) for p in subsidies.list_programs()]


@blp.route(f"/programs/<{ID}:program_id>")
class Program(MethodView):
    @blp.response(200, ProgramSchema)
    @error_responses(blp, 404)
    def get(self, program_id):
        """One programme."""
        return subsidies.program_view(subsidies.get_program(program_id))


@blp.route("/applications")
class Applications(MethodView):
    @login_required(blp)
    @blp.response(200, ApplicationSummarySchema(many=True))
    def get(self):
        """The worker's applications, newest first."""
        return [subsidies.application_view(a, detail=False) for a in
                subsidies.list_person_applications(current_person())]

    @login_required(blp)
    @blp.arguments(ApplicationCreateSchema)
    @blp.response(201, ApplicationSchema)
    @error_responses(blp, 404, 409)
    def post(self, args):
        """Create a draft (amount in fen); upload proofs, then submit."""
        return subsidies.application_view(subsidies.create_application(current_person(), args))


@blp.route(f"/applications/<{ID}:app_id>")
class Application(MethodView):
    @login_required(blp)
    @blp.response(200, ApplicationSchema)
    @error_responses(blp, 404)
    def get(self, app_id):
        """Status, history, proofs and what is still missing."""
        return subsidies.application_view(_mine(app_id))

    @login_required(blp)
    @blp.arguments(ApplicationFieldsSchema)
    @blp.response(200, ApplicationSchema)
    @error_responses(blp, 404, 409)
    def patch(self, args, app_id):
        """Edit a draft or a returned application."""
        return subsidies.application_view(subsidies.update_application(current_person(), _mine(app_id, True), args))


@blp.route(f"/applications/<{ID}:app_id>/attachments")
class Attachments(MethodView):
    @login_required(blp)
    @blp.arguments(AttachmentUploadSchema, location="files")
    @blp.response(201, AttachmentSchema)
    @error_responses(blp, 404, 409, 413, 415)
    def post(self, args, app_id):
        """Upload a proof (multipart: doc_type and file); JPEG, PNG or PDF by content, size-capped."""
        upload = args["file"]
        return subsidies.attachment_view(subsidies.add_attachment(
            current_person(), _mine(app_id, True), args["doc_type"], upload.filename, upload.stream))


@blp.route(f"/applications/<{ID}:app_id>/attachments/<{ID}:attachment_id>")
class Attachment(MethodView):
    @login_required(blp)
    @blp.response(200, FILE_SCHEMA, content_type="application/octet-stream")
    @error_responses(blp, 404)
    def get(self, app_id, attachment_id):
        """The stored file (owner only)."""
        att, path = subsidies.get_attachment(_mine(app_id), attachment_id)
        return send_download(path, att.content_type, att.filename)

    @login_required(blp)
    @blp.response(204)
    @error_responses(blp, 404, 409)
    def delete(self, app_id, attachment_id):
        """Remove a proof from a draft or returned application."""
        subsidies.delete_attachment(current_person(), _mine(app_id, True), attachment_id)


@blp.route(f"/applications/<{ID}:app_id>/submit")
class Submit(MethodView):
    @login_required(blp)
    @blp.response(200, ApplicationSchema)
    @error_responses(blp, 404, 409)
    def post(self, app_id):
        """Submit (or resubmit after a return).  422 not_submittable lists every problem at once."""
        return subsidies.application_view(subsidies.submit_application(current_person(), _mine(app_id, True)))


@blp.route(f"/applications/<{ID}:app_id>/withdraw")
class Withdraw(MethodView):
    @login_required(blp)
    @blp.arguments(WithdrawSchema, required=False)
    @blp.response(200, ApplicationSchema)
    @error_responses(blp, 404, 409)
    def post(self, args, app_id):
        """Withdraw an application that is not decided yet."""
        return subsidies.application_view(
            subsidies.withdraw_application(current_person(), _mine(app_id, True), (args or {}).get("reason")))
