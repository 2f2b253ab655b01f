"""The worker's inbox: messages written by jobs, once each (``dedup_key``)."""

from __future__ import annotations

from sqlalchemy import func, select, update

from server.errors import NotFound
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


def _mine(person_id: int):
    return InboxMessage.person_id == person_id


def unread_count(person_id: int) -> int:
    return db.scalar(select(func.count()).where(_mine(person_id), InboxMessage.read_at.is_(None))) or 0


def inbox_page(person_id: int, limit: int = 20, before_id: int | None = None, unread_only: bool = False) -> dict:
    """Newest first, ``limit`` per page; ``next_before_id`` continues (stable while new messages arrive)."""
    query = select(InboxMessage).where(_mine(person_id))
    if before_id:
        query = query.where(InboxMessage.id < before_id)
    if unread_only:
        query = query.where(InboxMessage.read_at.is_(None))
    rows = list(db.scalars(query.order_by(InboxMessage.id.desc()).limit(limit + 1)))
    items = [{**{c: getattr(m, c) for c in ("id", "kind", "title", "body", "link", "created_at", "read_at")},
              "read": m.read_at is not None} for m in rows[:limit]]
    return {"items": items, "unread": unread_count(person_id),
            "next_before_id": rows[limit - 1].id if len(rows) > limit else None}


def mark_read(person_id: int, message_id: int) -> InboxMessage:
    """Mark one of the worker's messages read (404 for someone else's); reading twice keeps the first time."""
    message = db.get(InboxMessage, message_id)
    if message is None or message.person_id != person_id:
        raise NotFound("找不到该消息")
    if message.read_at is None:
        db.execute(update(InboxMessage).where(InboxMessage.id == message_id, InboxMessage.read_at.is_(None))
                   .values(read_at=utcnow()))
        db.refresh(message)
    return message


def mark_all_read(person_id: int) -> int:
    return db.execute(update(InboxMessage).where(_mine(person_id), InboxMessage.read_at.is_(None))
                      .values(read_at=utcnow())).rowcount
