"""POST /api/v1/auth/login (wx.login code -> token) and POST /api/v1/auth/logout."""

from __future__ import annotations

from flask.views import MethodView

from handlers.common import Blueprint, bearer_token, client_ip, error_responses, login_required
from schemas.auth import LoginResultSchema, LoginSchema
from server.services import auth

blp = Blueprint("mp_auth", __name__, url_prefix="/api/v1/auth", description="WeChat login (小程序登录)")


@blp.route("/login")
class Login(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, LoginResultSchema)
    @error_responses(blp, 401, 429, 503)
    def post(self, args):
        """Exchange the wx.login code for a token (the session_key stays on the server); 10 a minute per client."""
        return auth.login_worker(args["code"], client_ip())


@blp.route("/logout")
class Logout(MethodView):
    @login_required(blp)
    @blp.response(204)
    def post(self):
        """Revoke the token sent with this request."""
        auth.revoke_token(auth.API, bearer_token())
