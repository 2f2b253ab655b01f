"""Keyword replies of the Official Account, maintained by staff (policy text, hotline numbers)."""

from __future__ import annotations

from sqlalchemy import select

from server.errors import NotFound
from server.extensions import db
from server.models import KeywordReply, Staff, StaffRole

from .audit import record_audit
from .auth import require_role


def list_replies() -> list[KeywordReply]:
    return list(db.scalars(select(KeywordReply).order_by(KeywordReply.priority, KeywordReply.id)))


def _get(reply_id: int) -> KeywordReply:
    reply = db.get(KeywordReply, reply_id)
    if reply is None:
        raise NotFound("找不到该关键词回复")
    return reply


def save_reply(staff: Staff, fields: dict, reply_id: int | None = None) -> KeywordReply:
    """Create or change a reply.  The Official Account is the city's: only city-level admins edit it."""
    require_role(staff, StaffRole.ADMIN)
    require_city_staff(staff)
    reply = _get(reply_id) if reply_id else KeywordReply(org_id=staff.org_id)
    before = {k: getattr(reply, k) for k in fields} if reply_id else None
    for key, value in fields.items():
        setattr(reply, key, value)
    db.add(reply)
    db.flush()
    record_audit(staff, "keyword_reply.save", "keyword_reply", reply.id, org_id=staff.org_id,
                 details={"before": before, "after": fields})
    _invalidate()
    return reply


def delete_reply(staff: Staff, reply_id: int) -> None:
    require_role(staff, StaffRole.ADMIN)
    require_city_staff(staff)
    reply = _get(reply_id)
    record_audit(staff, "keyword_reply.delete", "keyword_reply", reply.id, org_id=staff.org_id,
                 details={"keyword": reply.keyword, "reply": reply.reply})
    db.delete(reply)
    _invalidate()


def require_city_staff(staff: Staff) -> None:
    from server.errors import Forbidden

    if staff.org.kind != "city":
        raise Forbidden("公众号关键词回复由市总工会统一维护", code="city_only")


def _invalidate() -> None:
    from handlers.wechat.router import invalidate_keyword_cache

    invalidate_keyword_cache()
