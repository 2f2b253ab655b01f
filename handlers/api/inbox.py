"""The worker's inbox (GET /api/v1/me/inbox, mark read) and subscribe-message consent reports."""

from __future__ import annotations

from flask.views import MethodView

from handlers.common import Blueprint, ID, current_person, error_responses, login_required
from schemas.inbox import (InboxMessageSchema, InboxPageSchema, InboxQuerySchema, ReadAllSchema,
                           SubscriptionReportSchema, SubscriptionsSchema)
from server.services import consent, inbox

blp = Blueprint("mp_inbox", __name__, url_prefix="/api/v1/me", description="The worker's inbox and message consent (消息)")


@blp.route("/inbox")
class Inbox(MethodView):
    @login_required(blp)
    @blp.arguments(InboxQuerySchema, location="query")
    @blp.response(200, InboxPageSchema)
    def get(self, args):
        """Messages newest first, with the unread count; page on with ``before_id``."""
        return inbox.inbox_page(current_person().id, **args)


@blp.route(f"/inbox/<{ID}:message_id>/read")
class InboxRead(MethodView):
    @login_required(blp)
    @blp.response(200, InboxMessageSchema)
    @error_responses(blp, 404)
    def post(self, message_id):
        """Mark one message read (again is harmless)."""
        message = inbox.mark_read(current_person().id, message_id)
        return {**{c: getattr(message, c) for c in InboxMessageSchema().fields if c != "read"},
                "read": message.read_at is not None}


@blp.route("/inbox/read-all")
class InboxReadAll(MethodView):
    @login_required(blp)
    @blp.response(200, ReadAllSchema)
    def post(self):
        """Mark every message read."""
        person_id = current_person().id
        marked = inbox.mark_all_read(person_id)
        return {"marked": marked, "unread": inbox.unread_count(person_id)}


@blp.route("/subscriptions")
class Subscriptions(MethodView):
    @login_required(blp)
    @blp.arguments(SubscriptionReportSchema)
    @blp.response(200, SubscriptionsSchema)
    def post(self, args):
        """Report wx.requestSubscribeMessage's results: each accepted one-time template allows one message."""
        person_id = current_person().id
        consent.record_consents(person_id, args["accepted"], args["rejected"], args["long_term"], source="mp")
        return {"consents": consent.consents_of(person_id)}

    @login_required(blp)
    @blp.response(200, SubscriptionsSchema)
    def get(self):
        """What the worker allowed, per template."""
        return {"consents": consent.consents_of(current_person().id)}
