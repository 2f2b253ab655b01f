"""Staff: competition scores, results and their public notice, objections, the reminders' brief, Excel exports.

Organiser or admin role, competitions within the staff member's subtree (404 outside it).
"""

from __future__ import annotations

import io

from flask.views import MethodView

from handlers.common import Blueprint, FILE_SCHEMA, ID, current_staff, error_responses, login_required, send_download
from schemas.competition_results import (
    BriefSchema,
    ObjectionDecisionSchema,
    ExportQuerySchema,
    ObjectionQuerySchema,
    PublishSchema,
    ScoresInputSchema,
    ScoringSettingsSchema,
    ScoringStateSchema,
    StaffObjectionSchema,
    StaffResultRowSchema,
    StaffResultsSchema,
)
from server.models import StaffRole
from server.services import competition_exports, competition_reminders, competitions
from server.services import competition_results as results
from server.services.auth import require_role

blp = Blueprint("admin_competition_results", __name__, url_prefix="/api/admin/v1/competitions",
                description="Competition scores, results, objections and exports (成绩与公示)")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _competition(competition_id: int):
    return competitions.staff_competition(current_staff(), competition_id)


@blp.route(f"/<{ID}:competition_id>/scoring")
class Scoring(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, ScoringStateSchema)
    @error_responses(blp, 404)
    def get(self, competition_id):
        """The results' state (scoring → locked → published → final) and scoring rules."""
        return results.scoring_view(_competition(competition_id))

    @login_required(blp, staff=True)
    @blp.arguments(ScoringSettingsSchema)
    @blp.response(200, ScoringStateSchema)
    @error_responses(blp, 403, 404, 409)
    def patch(self, args, competition_id):
        """Drop the highest and lowest practical score (≥3 judges), default notice days; while scoring only."""
        return results.update_settings(current_staff(), _competition(competition_id), args)


@blp.route(f"/<{ID}:competition_id>/entries/<{ID}:entry_id>/scores")
class Scores(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(ScoresInputSchema)
    @blp.response(200, StaffResultRowSchema)
    @error_responses(blp, 403, 404, 409)
    def put(self, args, competition_id, entry_id):
        """Enter a confirmed entry's theory score and/or every practical judge's score.

        The practical score (judges' mean) and the final score (weighted) are computed, 2 decimals.
        409 with ``current_state`` once the scores are locked, or for an entry that is not confirmed.
        """
        return results.enter_scores(current_staff(), _competition(competition_id), entry_id, args)


def _transition(name: str, doc: str, action, arguments=None):
    """A POST changing the results' state: answers the new state, 409 with ``current_state`` otherwise."""

    def post(self, *args, **kwargs):
        body = args[0] if args else {}
        return action(current_staff(), _competition(kwargs["competition_id"]), **body)

    post.__doc__ = doc
    post = error_responses(blp, 403, 404, 409)(post)
    post = blp.response(200, ScoringStateSchema)(post)
    if arguments is not None:
        post = blp.arguments(arguments)(post)
    post = login_required(blp, staff=True)(post)
    return type(name, (MethodView,), {"post": post})


blp.route(f"/<{ID}:competition_id>/scores/lock")(_transition(
    "LockScores", "Lock the scores (scoring → locked); 409 scores_incomplete lists checked-in entries lacking a score.",
    results.lock_scores))
blp.route(f"/<{ID}:competition_id>/scores/unlock")(_transition(
    "UnlockScores", "Unlock scores not yet published (locked → scoring).", results.unlock_scores))
blp.route(f"/<{ID}:competition_id>/results/publish")(_transition(
    "PublishResults", "Publish for a public notice of ``notice_days`` days (locked → published); entrants are told.",
    results.publish, PublishSchema))
blp.route(f"/<{ID}:competition_id>/results/finalize")(_transition(
    "FinalizeResults", "Make the results final (published → final) once the notice period is over and no objection "
    "is open (409 notice_period_running / objections_open); the sweep does it by itself.", results.finalize))


@blp.route(f"/<{ID}:competition_id>/results")
class Results(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, StaffResultsSchema)
    @error_responses(blp, 403, 404)
    def get(self, competition_id):
        """The ranking (1, 2, 2, 4: ties on the final score go to the higher practical score, then share the rank)."""
        require_role(current_staff(), StaffRole.ORGANISER)
        return results.staff_results(_competition(competition_id))


@blp.route(f"/<{ID}:competition_id>/objections")
class Objections(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(ObjectionQuerySchema, location="query")
    @blp.response(200, StaffObjectionSchema(many=True))
    @error_responses(blp, 403, 404)
    def get(self, args, competition_id):
        """Entrants' objections to published results (``status=open`` for those awaiting an answer)."""
        require_role(current_staff(), StaffRole.ORGANISER)
        return results.list_objections(_competition(competition_id), args["status"])


@blp.route(f"/<{ID}:competition_id>/objections/<{ID}:objection_id>/decision")
class ObjectionDecision(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(ObjectionDecisionSchema)
    @blp.response(200, StaffObjectionSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, args, competition_id, objection_id):
        """Answer an open objection: upheld reopens the scores for correction (published → scoring), then lock and
        publish again (a new notice period); dismissed changes nothing.  The entrant is told the answer."""
        return results.decide_objection(current_staff(), _competition(competition_id), objection_id, **args)


@blp.route(f"/<{ID}:competition_id>/brief")
class Brief(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, BriefSchema)
    @error_responses(blp, 404)
    def get(self, competition_id):
        """What entrants are asked to bring (sent in the reminders a day and an hour before each round)."""
        return {"what_to_bring": competition_reminders.what_to_bring(_competition(competition_id).id)}

    @login_required(blp, staff=True)
    @blp.arguments(BriefSchema)
    @blp.response(200, BriefSchema)
    @error_responses(blp, 403, 404)
    def put(self, args, competition_id):
        """Set what entrants are asked to bring (null or empty clears it)."""
        require_role(current_staff(), StaffRole.ORGANISER)
        competition = _competition(competition_id)
        return {"what_to_bring": competition_reminders.set_what_to_bring(competition, args["what_to_bring"])}


@blp.route(f"/<{ID}:competition_id>/export")
class Export(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(ExportQuerySchema, location="query")
    @blp.response(200, FILE_SCHEMA, content_type=XLSX)
    @error_responses(blp, 403, 404)
    def get(self, args, competition_id):
        """Excel: ``entries`` (the venue's list with candidate numbers), ``checkins`` (arrived or not, time),
        ``results`` (rank, scores, final)."""
        filename, data = competition_exports.export_competition(current_staff(), _competition(competition_id),
                                                                args["kind"])
        return send_download(io.BytesIO(data), XLSX, filename, as_attachment=True)
