"""The worker's side of skill competitions: browse, sign up, withdraw, accept an offer, check in."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from handlers.common import bearer_token, current_person, error_responses, login_required
from schemas.competitions import CheckInResultSchema, CheckInSchema, CompetitionQuerySchema, CompetitionSchema, EntrySchema
from server.services import competitions

blp = Blueprint("mp_competitions", __name__, url_prefix="/api/v1", description="Skill competitions (职业技能竞赛)")


def _viewer():
    """The logged-in worker when a token is sent (their own status is shown), else nobody."""
    return current_person() if bearer_token() else None


@blp.route("/competitions")
class Competitions(MethodView):
    @blp.arguments(CompetitionQuerySchema, location="query")
    @blp.response(200, CompetitionSchema(many=True))
    @error_responses(blp, 401)
    def get(self, args):
        """Competitions, open for sign-up first (filter by trade and level); with a token, the worker's own status."""
        return competitions.competition_list_view(competitions.list_competitions(**args), _viewer())


@blp.route("/competitions/<int:competition_id>")
class Competition(MethodView):
    @blp.response(200, CompetitionSchema)
    @error_responses(blp, 401, 404)
    def get(self, competition_id):
        """One competition: places left, waiting-list length, rules, and (with a token) the worker's entry."""
        return competitions.competition_view(competitions.get_competition(competition_id), _viewer())


@blp.route("/competitions/<int:competition_id>/entries")
class Entries(MethodView):
    @login_required(blp)
    @blp.response(201, EntrySchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, competition_id):
        """Sign up: status confirmed, pending_approval or waitlisted (with position).

        Refusals: 403 not_eligible (``reasons`` lists every reason), 409 window_closed, already_entered
        (with ``current_state``), org_quota_full, team_entry_required.
        """
        return competitions.entry_view(competitions.sign_up(current_person(), competition_id))


@blp.route("/competitions/<int:competition_id>/entries/mine")
class MyEntry(MethodView):
    @login_required(blp)
    @blp.response(200, EntrySchema)
    @error_responses(blp, 404, 409)
    def delete(self, competition_id):
        """Withdraw (a held place passes at once to the first on the waiting list)."""
        return competitions.entry_view(competitions.withdraw(current_person(), competition_id))


@blp.route("/competitions/<int:competition_id>/entries/mine/confirm")
class ConfirmOffer(MethodView):
    @login_required(blp)
    @blp.response(200, EntrySchema)
    @error_responses(blp, 404, 409)
    def post(self, competition_id):
        """Accept a waiting-list offer before ``offer_expires_at`` (409 offer_expired after it)."""
        return competitions.entry_view(competitions.confirm_offer(current_person(), competition_id))


@blp.route("/competitions/<int:competition_id>/checkin")
class CheckIn(MethodView):
    @login_required(blp)
    @blp.arguments(CheckInSchema)
    @blp.response(200, CheckInResultSchema)
    @error_responses(blp, 400, 404, 409)
    def post(self, args, competition_id):
        """Check in by scanning the venue's code; a repeated scan answers first_scan=false and changes nothing.

        409 wrong_competition, not_entered, entry_not_confirmed (with ``current_state``); 400 invalid_code.
        """
        entry, first = competitions.code_check_in(current_person(), competition_id, args["code"])
        return {"first_scan": first, "entry": competitions.entry_view(entry)}


@blp.route("/me/entries")
class MyEntries(MethodView):
    @login_required(blp)
    @blp.response(200, EntrySchema(many=True))
    def get(self):
        """The worker's competition entries, newest first."""
        return [competitions.entry_view(e) for e in competitions.list_person_entries(current_person())]
