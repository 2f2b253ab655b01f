"""GET /api/v1/orgs: the union organisations a worker can pick in the profile."""

from __future__ import annotations

from flask.views import MethodView
from handlers.common import Blueprint

from schemas.orgs import OrgQuerySchema, OrgSchema
from server.services import orgs as org_service

blp = Blueprint("orgs", __name__, url_prefix="/api/v1/orgs", description="Union organisations (工会组织)")


@blp.route("")
class OrgList(MethodView):
    @blp.arguments(OrgQuerySchema, location="query")
    @blp.response(200, OrgSchema(many=True))
    def get(self, args):
        """List active organisations (filter by kind, parent or name)."""
        return org_service.list_orgs(kind=args["kind"], parent_id=args["parent_id"], q=args["q"])
