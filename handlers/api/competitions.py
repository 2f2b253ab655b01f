"""The worker's side of skill competitions: browse, sign up, teams, withdraw, accept an offer, check in.

Unit of work: like every request, these commit once, but the sign-up and team-submit views commit right after
the service returns, before the answer is serialised: the service holds the competition's gate (shared), the
entry's place row (or a quota row) until the commit, so nothing else should run in between.  A 4xx raised by the
service still rolls everything back (the commit is never reached).
"""

from __future__ import annotations

from flask.views import MethodView

from handlers.common import Blueprint, ID, bearer_token, current_person, current_person_id, error_responses, login_required
from schemas.competitions import (
    CheckInResultSchema,
    CheckInSchema,
    CompetitionQuerySchema,
    CompetitionSchema,
    EntrySchema,
    JoinTeamSchema,
    TeamInputSchema,
    TeamSchema,
)
from server.extensions import db
from server.services import competitions, txn

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


@blp.route(f"/competitions/<{ID}:competition_id>")
class Competition(MethodView):
    @blp.response(200, CompetitionSchema)
    @error_responses(blp, 401, 404)
    def get(self, competition_id):
        """One competition: places left, waiting-list length, rules, and (with a token) the worker's entry."""
        return competitions.competition_view(competitions.get_competition(competition_id), _viewer())


@blp.route(f"/competitions/<{ID}:competition_id>/entries")
class Entries(MethodView):
    @login_required(blp, load_person=False)
    @blp.response(201, EntrySchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, competition_id):
        """Sign up: status confirmed, pending_approval or waitlisted (with position).

        Refusals: 403 not_eligible (``reasons`` lists every reason), 409 window_closed, already_entered
        (with ``current_state``), org_quota_full, team_entry_required.
        """
        # The person is read with the competition; committed before serialising (the locks go at once), and run
        # again if PostgreSQL aborts it for a deadlock with the rush beside it.
        entry = txn.committed(lambda: competitions.sign_up(current_person_id(), competition_id))
        return competitions.entry_view(entry)


@blp.route(f"/competitions/<{ID}:competition_id>/entries/mine")
class MyEntry(MethodView):
    @login_required(blp)
    @blp.response(200, EntrySchema)
    @error_responses(blp, 404, 409)
    def delete(self, competition_id):
        """Withdraw (a held place passes at once to the first on the waiting list)."""
        return competitions.entry_view(competitions.withdraw(current_person(), competition_id))


@blp.route(f"/competitions/<{ID}:competition_id>/entries/mine/confirm")
class ConfirmOffer(MethodView):
    @login_required(blp)
    @blp.response(200, EntrySchema)
    @error_responses(blp, 404, 409)
    def post(self, competition_id):
        """Accept a waiting-list offer before ``offer_expires_at`` (409 offer_expired after it)."""
        return competitions.entry_view(competitions.confirm_offer(current_person(), competition_id))


@blp.route(f"/competitions/<{ID}:competition_id>/checkin")
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


@blp.route(f"/competitions/<{ID}:competition_id>/teams")
class Teams(MethodView):
    @login_required(blp)
    @blp.arguments(TeamInputSchema)
    @blp.response(201, TeamSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, args, competition_id):
        """Create a team as its captain (and first member) and get its join code; the captain is checked against
        the rules.  409 individual_entry_required, window_closed, already_entered; 403 not_eligible."""
        team = competitions.create_team(competition_id, args["name"], person=current_person())
        return competitions.team_view(team)


@blp.route(f"/competitions/<{ID}:competition_id>/teams/mine")
class MyTeam(MethodView):
    @login_required(blp)
    @blp.response(200, TeamSchema)
    @error_responses(blp, 404)
    def get(self, competition_id):
        """The team the worker is (or was last) in for this competition; 404 not_in_team."""
        return competitions.team_view(competitions.my_team(current_person(), competition_id))


@blp.route("/teams/join")
class JoinTeam(MethodView):
    @login_required(blp)
    @blp.arguments(JoinTeamSchema)
    @blp.response(201, TeamSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, args):
        """Join a forming team with its code (checked against the rules; one active entry per competition).

        404 invalid_code; 409 team_full, invalid_state (with ``current_state``: the team was submitted or
        withdrawn), already_entered, window_closed; 403 not_eligible.
        """
        return competitions.team_view(competitions.join_team(current_person(), args["code"]))


@blp.route(f"/teams/<{ID}:team_id>/submit")
class SubmitTeam(MethodView):
    @login_required(blp)
    @blp.response(200, TeamSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, team_id):
        """The captain submits the team: it takes one place per member at once (``entry_status`` confirmed or
        pending_approval) or waits as one entry (waitlisted, ``position``).  409 team_size, org_quota_full,
        invalid_state (with ``current_state``); 403 not_captain."""
        team = txn.committed(lambda: competitions.submit_team(current_person(), team_id))  # committed first, as sign-up
        return competitions.team_view(team)


@blp.route(f"/teams/<{ID}:team_id>")
class Team(MethodView):
    @login_required(blp)
    @blp.response(200, TeamSchema)
    @error_responses(blp, 403, 404, 409)
    def delete(self, team_id):
        """The captain withdraws the team; its places pass at once to the waiting list."""
        return competitions.team_view(competitions.withdraw_team(current_person(), team_id))


@blp.route(f"/teams/<{ID}:team_id>/members/<{ID}:person_id>")
class TeamMember(MethodView):
    @login_required(blp)
    @blp.response(200, TeamSchema)
    @error_responses(blp, 403, 404, 409)
    def delete(self, team_id, person_id):
        """The captain removes a member, or a member leaves (their own ``person_id``), while the team is forming.

        409 invalid_state (with ``current_state``) once submitted; captain_cannot_leave.
        """
        return competitions.team_view(competitions.remove_member(current_person(), team_id, person_id))
