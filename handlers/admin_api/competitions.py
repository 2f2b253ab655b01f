"""The staff side of skill competitions: create and edit, entries and the waiting list, teams, check-in.

Unit of work: the on-behalf sign-up and team-submit views commit right after the service returns, before
serialising (the sign-up's locks are held until the commit); see handlers/api/competitions.py.
"""

from __future__ import annotations

from flask.views import MethodView

from handlers.common import Blueprint, ID, current_staff, error_responses, login_required
from schemas.competitions import (
    ArrivalsSchema,
    TeamInputSchema,
    TeamMemberInputSchema,
    TeamSchema,
    CheckInSchema,
    CompetitionInputSchema,
    CompetitionPatchSchema,
    EntryQuerySchema,
    OnBehalfSchema,
    StaffActionSchema,
    StaffCheckInResultSchema,
    StaffCompetitionSchema,
    StaffEntrySchema,
)
from server.services import competitions, txn

blp = Blueprint("admin_competitions", __name__, url_prefix="/api/admin/v1",
                description="Skill competitions for organisers (竞赛管理)")


def _competition(competition_id: int):
    return competitions.staff_competition(current_staff(), competition_id)


def _view(competition):
    return competitions.competition_view(competition, staff=True)


def _entries(entries, competition_id: int):
    positions = competitions.waitlist_positions(competition_id)
    return [competitions.entry_view(e, for_staff=True, positions=positions) for e in entries]


@blp.route("/competitions")
class Competitions(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, StaffCompetitionSchema(many=True))
    def get(self):
        """Competitions organised within the staff member's organisation subtree."""
        return competitions.competition_list_view(competitions.list_staff_competitions(current_staff()), staff=True)

    @login_required(blp, staff=True)
    @blp.arguments(CompetitionInputSchema)
    @blp.response(201, StaffCompetitionSchema)
    @error_responses(blp, 403)
    def post(self, args):
        """Create a competition (a draft unless ``status`` says published); organiser/admin roles."""
        return _view(competitions.save_competition(current_staff(), args))


@blp.route(f"/competitions/<{ID}:competition_id>")
class Competition(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, StaffCompetitionSchema)
    @error_responses(blp, 404)
    def get(self, competition_id):
        """One competition with places left and the waiting-list length."""
        return _view(_competition(competition_id))

    @login_required(blp, staff=True)
    @blp.arguments(CompetitionPatchSchema(partial=True))
    @blp.response(200, StaffCompetitionSchema)
    @error_responses(blp, 403, 404, 409)
    def patch(self, args, competition_id):
        """Edit; the capacity cannot drop below the places held (raising it does not promote by itself)."""
        return _view(competitions.save_competition(current_staff(), args, _competition(competition_id)))


@blp.route(f"/competitions/<{ID}:competition_id>/entries")
class Entries(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(EntryQuerySchema, location="query")
    @blp.response(200, StaffEntrySchema(many=True))
    @error_responses(blp, 404)
    def get(self, args, competition_id):
        """Entries in arrival order (``status=waitlisted``: the waiting list, with positions); ID numbers masked."""
        return _entries(competitions.list_entries(_competition(competition_id), args["status"]), competition_id)

    @login_required(blp, staff=True)
    @blp.arguments(OnBehalfSchema)
    @blp.response(201, StaffEntrySchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, args, competition_id):
        """An enterprise union officer signs up a worker of their own union (same answers as the worker's sign-up)."""
        staff, person_id = current_staff(), args["person_id"]
        entry = txn.committed(lambda: competitions.sign_up_on_behalf(staff, competition_id, person_id))
        return competitions.entry_view(entry, for_staff=True)


@blp.route(f"/competitions/<{ID}:competition_id>/entries/<{ID}:entry_id>/<any(approve, reject, remove, promote):action>")
class EntryAction(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(StaffActionSchema)
    @blp.response(200, StaffEntrySchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, args, competition_id, entry_id, action):
        """approve / reject a pending entry, remove an entry, or promote a waitlisted entry by hand (an offer).

        A place freed by reject or remove goes to the first on the waiting list.  409 with ``current_state``
        when the entry's state does not allow the action; 409 no_place_free for a promotion without a free place.
        """
        entry = competitions.staff_action(current_staff(), _competition(competition_id), entry_id, action,
                                          args["reason"])
        return competitions.entry_view(entry, for_staff=True)


@blp.route(f"/competitions/<{ID}:competition_id>/checkins")
class CheckIns(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, ArrivalsSchema)
    @error_responses(blp, 404)
    def get(self, competition_id):
        """Who has arrived (latest first), against the number of confirmed entrants: poll it for a live view."""
        tally = competitions.arrivals(_competition(competition_id))
        return {**tally, "entries": _entries(tally["entries"], competition_id)}

    @login_required(blp, staff=True)
    @blp.arguments(CheckInSchema)
    @blp.response(200, StaffCheckInResultSchema)
    @error_responses(blp, 400, 403, 404, 409)
    def post(self, args, competition_id):
        """Scan an entrant's admission code; a repeated scan answers first_scan=false and changes nothing.

        409 wrong_competition or entry_not_confirmed (with ``current_state``); 400 invalid_code.
        """
        entry, first = competitions.staff_check_in(current_staff(), _competition(competition_id), args["code"])
        return {"first_scan": first, "entry": competitions.entry_view(entry, for_staff=True)}


@blp.route(f"/competitions/<{ID}:competition_id>/teams")
class Teams(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, TeamSchema(many=True))
    @error_responses(blp, 404)
    def get(self, competition_id):
        """The competition's teams: all of them for its organisers, an officer's own union's otherwise."""
        staff = current_staff()
        competition = competitions.get_competition(competition_id)
        return [competitions.team_view(t) for t in competitions.list_teams(staff, competition)]

    @login_required(blp, staff=True)
    @blp.arguments(TeamInputSchema)
    @blp.response(201, TeamSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, args, competition_id):
        """An enterprise union officer creates a team for their union (no captain; they add the members)."""
        return competitions.team_view(competitions.create_team(competition_id, args["name"], staff=current_staff()))


@blp.route(f"/teams/<{ID}:team_id>/members")
class TeamMembers(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(TeamMemberInputSchema)
    @blp.response(201, TeamSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, args, team_id):
        """Add a worker of the officer's own union (checked against the rules; 404 for anyone else's worker)."""
        return competitions.team_view(competitions.staff_add_member(current_staff(), team_id, args["person_id"]))


@blp.route(f"/teams/<{ID}:team_id>/members/<{ID}:person_id>")
class TeamMember(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, TeamSchema)
    @error_responses(blp, 403, 404, 409)
    def delete(self, team_id, person_id):
        """Remove a member while the team is forming (409 invalid_state with ``current_state`` after)."""
        return competitions.team_view(competitions.remove_member(current_staff(), team_id, person_id))


@blp.route(f"/teams/<{ID}:team_id>/submit")
class SubmitTeam(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, TeamSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, team_id):
        """Submit the union's team as a unit (as the captain's submit)."""
        team = txn.committed(lambda: competitions.submit_team(current_staff(), team_id))  # committed before serialising
        return competitions.team_view(team)


@blp.route(f"/teams/<{ID}:team_id>")
class Team(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, TeamSchema)
    @error_responses(blp, 403, 404, 409)
    def delete(self, team_id):
        """Withdraw the union's team; its places pass at once to the waiting list."""
        return competitions.team_view(competitions.withdraw_team(current_staff(), team_id))
