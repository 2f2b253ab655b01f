"""GET and PUT /api/v1/me: the worker's profile (the ID number only ever masked)."""

from __future__ import annotations

from flask.views import MethodView

from handlers.common import Blueprint, current_person, error_responses, login_required
from schemas.me import ProfileSchema, ProfileUpdateSchema
from schemas.wechat import BindingCodeSchema
from server.services import profile

blp = Blueprint("mp_me", __name__, url_prefix="/api/v1/me", description="The worker's profile (个人信息)")


@blp.route("")
class Me(MethodView):
    @login_required(blp)
    @blp.response(200, ProfileSchema)
    def get(self):
        """The profile of the logged-in worker."""
        return profile.profile_view(current_person())

    @login_required(blp)
    @blp.arguments(ProfileUpdateSchema)
    @blp.response(200, ProfileSchema)
    @error_responses(blp, 409)
    def put(self, args):
        """Update the profile; fields left out are kept.  409 id_number_taken for a number bound to someone else."""
        return profile.profile_view(profile.update_profile(current_person(), args))


@blp.route("/oa-binding-code")
class OaBindingCode(MethodView):
    @login_required(blp)
    @blp.response(201, BindingCodeSchema)
    @error_responses(blp, 409)
    def post(self):
        """A one-time code to link the worker's Official Account follow: send “绑定 <code>” there."""
        from server.errors import Conflict
        from server.services.people import BIND_CODE_TTL, issue_binding_code

        person = current_person()
        if not person.bound:
            raise Conflict("profile_incomplete", "请先完善个人信息（姓名、身份证号、所属工会）后再绑定公众号")
        return {"code": issue_binding_code(person.id), "expires_in": BIND_CODE_TTL}
