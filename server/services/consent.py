"""The subscribe-message consent ledger: what each worker allowed per template.

Each one-time consent (``accept`` in WeChat's popup) adds one to
``remaining`` and allows one message; sending consumes one with a
conditional UPDATE (``remaining > 0``), so two workers can never spend the
same consent.  A long-term subscription is never used up.  Reports come
from the mini-program (``POST /api/v1/me/subscriptions``) and from the
Official Account's subscribe_msg_* events; both write here.
"""

from __future__ import annotations

from sqlalchemy import case, select, update

from server.extensions import db
from server.models import Person, SubscribeConsent, utcnow
from server.services.txn import insert_ignore

C = SubscribeConsent


def _ensure(person_id: int, template_id: str, source: str) -> None:
    now = utcnow()
    insert_ignore(C.__table__, {"person_id": person_id, "template_id": template_id, "remaining": 0, "long_term": False,
                                "rejected": False, "source": source, "created_at": now, "updated_at": now},
                  ["person_id", "template_id"])


def _change(person_id: int, template_ids, source: str, **values) -> int:
    changed = 0
    for template_id in dict.fromkeys(t for t in template_ids if isinstance(t, str) and t):
        _ensure(person_id, template_id, source)
        changed += db.execute(update(C).where(C.person_id == person_id, C.template_id == template_id)
                              .values(source=source, updated_at=utcnow(), **values)).rowcount
    return changed


def record_consents(person_id: int, accepted=(), rejected=(), long_term=(), source: str = "mp") -> int:
    """Apply one popup's results: +1 per accepted one-time template, long-term flags, refusals."""
    return (_change(person_id, accepted, source, remaining=C.remaining + 1, rejected=False)
            + _change(person_id, long_term, source, long_term=True, rejected=False)
            + _change(person_id, rejected, source, rejected=True))


def withdraw(person_id: int, template_ids, source: str) -> int:
    """The worker turned the template off (settings page) or WeChat answered 43101: nothing left."""
    return _change(person_id, template_ids, source, remaining=0, long_term=False, rejected=True)


def consume(person_id: int, template_id: str) -> bool:
    """Spend one consent for a send (long-term ones are not used up); False when none is left."""
    result = db.execute(
        update(C).where(C.person_id == person_id, C.template_id == template_id, C.long_term | (C.remaining > 0))
        .values(remaining=case((C.long_term, C.remaining), else_=C.remaining - 1), updated_at=utcnow()))
    return result.rowcount == 1


def remaining(person_id: int, template_id: str) -> tuple[int, bool]:
    row = db.execute(select(C.remaining, C.long_term).where(C.person_id == person_id, C.template_id == template_id)).first()
    return (row.remaining, row.long_term) if row else (0, False)


def consents_of(person_id: int) -> list[dict]:
    rows = db.scalars(select(C).where(C.person_id == person_id).order_by(C.template_id))
    return [{"template_id": c.template_id, "remaining": c.remaining, "long_term": c.long_term, "rejected": c.rejected}
            for c in rows]


def _items(event: dict, section: str) -> list[dict]:
    """``List`` under an event section, a dict for one template or a list for several."""
    items = (event.get(section) or {}).get("List") or []
    return [items] if isinstance(items, dict) else [i for i in items if isinstance(i, dict)]


def apply_oa_event(message: dict) -> int:
    """subscribe_msg_popup_event / _change_event / _sent_event from the Official Account callback."""
    person_id = db.scalar(select(Person.id).where(Person.oa_openid == message.get("FromUserName")))
    event = (message.get("Event") or "").lower()
    if person_id is None:
        return 0
    if event == "subscribe_msg_sent_event":
        refused = [i.get("TemplateId") for i in _items(message, "SubscribeMsgSentEvent")
                   if str(i.get("ErrorCode")) == "43101"]
        return withdraw(person_id, refused, "oa_sent_event")
    section = "SubscribeMsgPopupEvent" if event == "subscribe_msg_popup_event" else "SubscribeMsgChangeEvent"
    items = _items(message, section)
    status = {s: [i.get("TemplateId") for i in items if i.get("SubscribeStatusString") == s] for s in ("accept", "reject")}
    if event == "subscribe_msg_popup_event":
        return record_consents(person_id, accepted=status["accept"], rejected=status["reject"], source="oa_popup")
    return (withdraw(person_id, status["reject"], "oa_change")
            + _change(person_id, status["accept"], "oa_change", rejected=False))
