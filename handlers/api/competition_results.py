"""The worker's side of competition results (公示 and objections) and competition alerts by trade."""

from __future__ import annotations

from flask.views import MethodView

from handlers.common import Blueprint, ID, bearer_token, current_person, error_responses, login_required
from schemas.competition_results import AlertsSchema, ObjectionInputSchema, ObjectionSchema, PublicResultsSchema
from server.services import competition_reminders
from server.services import competition_results as results

blp = Blueprint("mp_competition_results", __name__, url_prefix="/api/v1",
                description="Competition results and alerts (竞赛成绩与提醒)")


@blp.route(f"/competitions/<{ID}:competition_id>/results")
class Results(MethodView):
    @blp.response(200, PublicResultsSchema)
    @error_responses(blp, 401, 404, 409)
    def get(self, competition_id):
        """Published (公示中) or final results, names masked (张*明); with a token the worker's own row is
        marked and repeated in ``mine``.  409 results_not_published with ``current_state`` before that."""
        return results.public_results(competition_id, current_person() if bearer_token() else None)


@blp.route(f"/competitions/<{ID}:competition_id>/objections")
class Objections(MethodView):
    @login_required(blp)
    @blp.arguments(ObjectionInputSchema)
    @blp.response(201, ObjectionSchema)
    @error_responses(blp, 404, 409)
    def post(self, args, competition_id):
        """Raise one objection (≤500 characters) during the public notice: 409 not_in_notice_period,
        already_objected or not_entered otherwise."""
        return results.objection_view(results.raise_objection(current_person(), competition_id, args["text"]))


@blp.route("/competition-alerts")
class Alerts(MethodView):
    @login_required(blp)
    @blp.response(200, AlertsSchema)
    def get(self):
        """The trades the worker is told about when a competition's sign-up opens."""
        return {"trades": competition_reminders.alert_trades(current_person())}

    @login_required(blp)
    @blp.arguments(AlertsSchema)
    @blp.response(200, AlertsSchema)
    def post(self, args):
        """Replace the worker's alert trades (at most 20)."""
        return {"trades": competition_reminders.set_alert_trades(current_person(), args["trades"])}

    @login_required(blp)
    @blp.response(200, AlertsSchema)
    def delete(self):
        """Stop all competition alerts."""
        return {"trades": competition_reminders.clear_alerts(current_person())}
