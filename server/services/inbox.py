"""The worker's inbox: messages written by jobs, once each (``dedup_key``)."""

from __future__ import annotations

from sqlalchemy import select

from server.extensions import db
from server.models import InboxMessage, utcnow
from server.services.txn import insert_ignore


def deliver_inbox_message(person_id: int, kind: str, title: str, body: str, dedup_key: str,
                          link: str | None = None) -> bool:
    """Write the message unless one with ``dedup_key`` exists; True when it was written now."""
    values = {"person_id": person_id, "kind": kind, "title": title, "body": body, "link": link,
              "dedup_key": dedup_key, "created_at": utcnow()}
    return insert_ignore(InboxMessage.__table__, values, ["dedup_key"]) == 1


def list_inbox(person_id: int, limit: int = 50) -> list[InboxMessage]:
    return list(db.scalars(select(InboxMessage).where(InboxMessage.person_id == person_id)
                           .order_by(InboxMessage.id.desc()).limit(limit)))
