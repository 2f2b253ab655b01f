"""Announcements for staff: write, preview, send or schedule, pause/resume/cancel, progress, report; group bots."""

from __future__ import annotations

from flask.views import MethodView

from handlers.common import Blueprint, ID, current_staff, error_responses, login_required
from schemas.announcements import (
    AnnouncementInputSchema,
    AnnouncementQuerySchema,
    AnnouncementSchema,
    PreviewSchema,
    ReportQuerySchema,
    ReportSchema,
    SendSchema,
    WebhookInputSchema,
    WebhookSchema,
)
from server.services import announcements as svc

blp = Blueprint("admin_announcements", __name__, url_prefix="/api/admin/v1",
                description="Announcements and union group bots for staff (公告与群机器人)")


def _get(announcement_id: int, lock: bool = False):
    return svc.get(current_staff(), announcement_id, lock)


@blp.route("/announcements")
class Announcements(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(AnnouncementQuerySchema, location="query")
    @blp.response(200, AnnouncementSchema(many=True))
    def get(self, args):
        """Announcements of the staff member's organisation and below, newest first."""
        return [svc.view(a, detail=False) for a in svc.list_for_staff(current_staff(), **args)]

    @login_required(blp, staff=True)
    @blp.arguments(AnnouncementInputSchema)
    @blp.response(201, AnnouncementSchema)
    @error_responses(blp, 403, 422)
    def post(self, args):
        """Write an announcement (a draft) for an audience within the staff member's organisation."""
        return svc.view(svc.create(current_staff(), args))


@blp.route(f"/announcements/<{ID}:announcement_id>")
class Announcement(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, AnnouncementSchema)
    @error_responses(blp, 404)
    def get(self, announcement_id):
        """One announcement with live progress per channel and status (queued, sending, sent, failed, skipped...)."""
        return svc.view(_get(announcement_id))


@blp.route(f"/announcements/<{ID}:announcement_id>/preview")
class Preview(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, PreviewSchema)
    @error_responses(blp, 404)
    def get(self, announcement_id):
        """How many people it will reach, on which channel first, and how many group bots, before sending."""
        return svc.preview(current_staff(), _get(announcement_id))


@blp.route(f"/announcements/<{ID}:announcement_id>/send")
class Send(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(SendSchema)
    @blp.response(200, AnnouncementSchema)
    @error_responses(blp, 403, 404, 409, 422)
    def post(self, args, announcement_id):
        """Send now, or at ``at`` (then a cron job starts it); a scheduled one may be re-timed or sent at once."""
        return svc.view(svc.send(current_staff(), _get(announcement_id, lock=True), args.get("at")))


def _transition(name: str, announcement_id: int) -> dict:
    return svc.view(getattr(svc, name)(current_staff(), _get(announcement_id, lock=True)))


@blp.route(f"/announcements/<{ID}:announcement_id>/pause")
class Pause(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, AnnouncementSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, announcement_id):
        """Pause a sending announcement: the fan-out stops and queued deliveries wait."""
        return _transition("pause", announcement_id)


@blp.route(f"/announcements/<{ID}:announcement_id>/resume")
class Resume(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, AnnouncementSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, announcement_id):
        """Resume a paused announcement: the fan-out and the waiting deliveries go on."""
        return _transition("resume", announcement_id)


@blp.route(f"/announcements/<{ID}:announcement_id>/cancel")
class Cancel(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, AnnouncementSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, announcement_id):
        """Cancel: deliveries not yet sent become cancelled and it leaves the workers' list."""
        return _transition("cancel", announcement_id)


@blp.route(f"/announcements/<{ID}:announcement_id>/report")
class Report(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(ReportQuerySchema, location="query")
    @blp.response(200, ReportSchema)
    @error_responses(blp, 404)
    def get(self, args, announcement_id):
        """Deliveries that did not arrive (failed, skipped, unknown, blocked) with reasons, and a summary by reason."""
        return svc.report(current_staff(), _get(announcement_id), **args)


@blp.route(f"/orgs/<{ID}:org_id>/webhook")
class Webhook(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, WebhookSchema)
    @error_responses(blp, 404)
    def get(self, org_id):
        """The organisation's WeCom group bot (key masked) and its last error."""
        return svc.webhook_view(svc.get_webhook(current_staff(), org_id))

    @login_required(blp, staff=True)
    @blp.arguments(WebhookInputSchema)
    @blp.response(200, WebhookSchema)
    @error_responses(blp, 403, 404)
    def put(self, args, org_id):
        """Register (or replace) the group bot; broadcasts to the organisation also post there once (admins)."""
        return svc.webhook_view(svc.set_webhook(current_staff(), org_id, args["key"], args["msgtype"]))

    @login_required(blp, staff=True)
    @blp.response(204)
    @error_responses(blp, 403, 404)
    def delete(self, org_id):
        """Remove the group bot (admins)."""
        svc.delete_webhook(current_staff(), org_id)
