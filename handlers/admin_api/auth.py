"""Staff login: POST /api/admin/v1/auth/login, /logout and GET /me."""

from __future__ import annotations

from flask.views import MethodView

from handlers.common import Blueprint, bearer_token, client_ip, current_staff, error_responses, login_required
from schemas.auth import StaffLoginResultSchema, StaffLoginSchema, StaffSchema
from server.services import auth

blp = Blueprint("admin_auth", __name__, url_prefix="/api/admin/v1/auth", description="Staff login (工作人员登录)")


@blp.route("/login")
class StaffLogin(MethodView):
    @blp.arguments(StaffLoginSchema)
    @blp.response(200, StaffLoginResultSchema)
    @error_responses(blp, 401, 429)
    def post(self, args):
        """Username and password -> a staff token (STAFF_TOKEN_TTL); 10 attempts a minute per client."""
        return auth.login_staff(args["username"], args["password"], client_ip())


@blp.route("/logout")
class StaffLogout(MethodView):
    @login_required(blp, staff=True)
    @blp.response(204)
    def post(self):
        """Revoke the staff token sent with this request."""
        auth.revoke_token(auth.STAFF, bearer_token())


@blp.route("/me")
class StaffMe(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, StaffSchema)
    def get(self):
        """The logged-in staff member and their organisation."""
        return auth.staff_view(current_staff())
