"""Announcements in the mini-program: those whose audience includes the worker; opening one records the read."""

from __future__ import annotations

from flask.views import MethodView

from handlers.common import Blueprint, ID, current_person, error_responses, login_required
from schemas.announcements import PageQuerySchema, PublicAnnouncementSchema
from server.services import announcements as svc

blp = Blueprint("mp_announcements", __name__, url_prefix="/api/v1/announcements", description="Announcements (公告)")


@blp.route("")
class Announcements(MethodView):
    @login_required(blp)
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, PublicAnnouncementSchema(many=True))
    def get(self, args):
        """Published announcements for the worker (their audience includes them), newest first, with ``read``."""
        return svc.list_for_worker(current_person(), **args)


@blp.route(f"/<{ID}:announcement_id>")
class Announcement(MethodView):
    @login_required(blp)
    @blp.response(200, PublicAnnouncementSchema)
    @error_responses(blp, 404)
    def get(self, announcement_id):
        """One announcement; opening it marks it read (for "has not read" audiences)."""
        return svc.open_for_worker(current_person(), announcement_id)
