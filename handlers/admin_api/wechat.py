"""The Official Account for staff: keyword replies they maintain, and the log of recent pushes."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import select

from handlers.common import Blueprint, ID, current_staff, error_responses, login_required
from schemas.wechat import KeywordReplyPatchSchema, KeywordReplySchema, PushQuerySchema, PushSchema
from server.extensions import db
from server.models import StaffRole, WechatPush
from server.services import keywords
from server.services.auth import require_role

blp = Blueprint("admin_wechat", __name__, url_prefix="/api/admin/v1/wechat", description="Official Account (公众号) for staff")


@blp.route("/keywords")
class Keywords(MethodView):
    @login_required(blp, staff=True)
    @blp.response(200, KeywordReplySchema(many=True))
    def get(self):
        """Keyword replies, in the order they are tried."""
        current_staff()
        return keywords.list_replies()

    @login_required(blp, staff=True)
    @blp.arguments(KeywordReplySchema)
    @blp.response(201, KeywordReplySchema)
    @error_responses(blp, 403)
    def post(self, args):
        """Add a keyword reply (city admins); live within 30 seconds on every server."""
        return keywords.save_reply(current_staff(), args)


@blp.route(f"/keywords/<{ID}:reply_id>")
class Keyword(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(KeywordReplyPatchSchema)
    @blp.response(200, KeywordReplySchema)
    @error_responses(blp, 403, 404)
    def patch(self, args, reply_id):
        """Change a keyword reply."""
        return keywords.save_reply(current_staff(), args, reply_id)

    @login_required(blp, staff=True)
    @blp.response(204)
    @error_responses(blp, 403, 404)
    def delete(self, reply_id):
        """Remove a keyword reply."""
        keywords.delete_reply(current_staff(), reply_id)


@blp.route("/pushes")
class Pushes(MethodView):
    @login_required(blp, staff=True)
    @blp.arguments(PushQuerySchema, location="query")
    @blp.response(200, PushSchema(many=True))
    @error_responses(blp, 403)
    def get(self, args):
        """Recent pushes the callback received: who, what, which bot answered and how fast."""
        require_role(current_staff(), StaffRole.ADMIN)
        keywords.require_city_staff(current_staff())
        stmt = select(WechatPush).order_by(WechatPush.id.desc()).limit(args["limit"])
        if args["openid"]:
            stmt = stmt.where(WechatPush.openid == args["openid"])
        if args["bot"]:
            stmt = stmt.where(WechatPush.bot == args["bot"])
        return list(db.scalars(stmt))
