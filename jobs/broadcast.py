"""Announcement fan-out: pages of recipients -> delivery rows in bulk -> one send job per batch.

A broadcast to 100,000 people never makes 100,000 jobs nor holds 100,000 objects:

* ``fanout(announcement_id, cursor)`` takes the next ``PAGE`` recipients by keyset on
  ``people.id`` (plain rows, only the columns the channel choice needs), writes their
  delivery rows and inbox copies with INSERT ... SELECT from one JSON parameter ... ON
  CONFLICT DO NOTHING, one statement per group of rows that share all but ``VARYING``
  (a rendered payload is bound once per group, not encoded per row; see
  ``txn.insert_ignore_rows``; dedup keys ``announcement:{id}:{person}:{channel}``), takes
  the ids of the new pending rows from its RETURNING, advances ``fanout_cursor`` in the
  same transaction, and after commit queues one ``send_batch`` per ``BATCH`` pending
  rows (bulk queue; the last page in quarter batches, so that the workers finish
  together) and itself for the next page (default queue, so it runs ahead).
  A crash before the commit repeats the page harmlessly; after it, the next page.
* The cursor argument makes a duplicate chain harmless: a fan-out whose cursor is
  no longer the announcement's does nothing, so the sweeper may re-queue a stalled
  fan-out without ever running two chains.
* ``send_batch`` leaves the rows pending while the announcement is paused (or
  cancelled: ``cancel`` has already marked them), otherwise hands them to
  ``jobs.delivery.send_deliveries`` (claims, pooled HTTP, bounded concurrency,
  retries) and then marks the announcement done when nothing is left.  The
  claim itself skips the rows of an announcement no longer ``sending``, so a
  pause also stops a batch already running, within DELIVERY_CONCURRENCY sends.
* Quiet hours: rows of a non-urgent announcement get ``not_before`` = the end of the
  quiet hours and are not queued; ``jobs.delivery.sweep_deliveries`` queues them when due.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select

from server.extensions import db
from server.models import Announcement, Delivery, InboxMessage, utcnow
from server.services import announcements, audience, messages
from server.services.txn import insert_ignore_many, insert_ignore_rows

from .base import job
from .queues import BULK, DEFAULT, enqueue_after_commit

PAGE = audience.PAGE
BATCH = 1000  # rows per send job: each job is a fork and a drain of its sends, but a pause needs no job to end
KEYS_PER_QUERY = 500
STALE_SECONDS = 120  # a fan-out untouched this long is re-queued by the sweeper
#: The columns in which a page's delivery rows differ (the rest is bound once per group of rows: see
#: ``insert_ignore_rows``).
VARYING = ("person_id", "dedup_key", "channel", "status", "skip_reason")
ROW_DEFAULTS = {"person_id": None, "org_id": None, "payload": {}, "urgent": False, "status": "pending", "attempts": 0,
                "not_before": None, "skip_reason": None}


def enqueue_fanout(announcement_id: int, cursor: int) -> None:
    enqueue_after_commit(fanout, announcement_id, cursor, queue=DEFAULT)


def enqueue_batches(announcement_id: int, ids: list[int], size: int = BATCH) -> None:
    for i in range(0, len(ids), size):
        enqueue_after_commit(send_batch, announcement_id, ids[i:i + size], queue=BULK)


def _planner(a: Announcement, now):
    """plan(row) -> (channel, payload, skipped): A's channel choice per person, each channel rendered once."""
    ctx = messages.plain(announcements.context(a))
    rendered: dict[str, dict | str] = {}

    def plan(row):
        channel, skipped = messages.choose_channel(row, announcements.KIND, now)
        while channel is not None:
            if channel not in rendered:
                try:
                    rendered[channel] = {**messages.render(announcements.KIND, channel, ctx), "context": ctx}
                except messages.TemplateError as exc:
                    rendered[channel] = f"invalid_data: {exc}"[:64]
            if isinstance(rendered[channel], dict):
                return channel, rendered[channel], skipped
            skipped.append((channel, rendered[channel]))
            channel, more = messages.choose_channel(row, announcements.KIND, now, after=channel)
            skipped += more
        return None, None, skipped

    return plan


def _rows(a: Announcement, people, now, hold) -> tuple[list[dict], list[dict]]:
    plan = _planner(a, now)
    deliveries, inbox = [], []
    stamps = {"created_at": now, "updated_at": now}
    for row in people:
        channel, payload, skipped = plan(row)
        for values in messages.delivery_rows(row.id, announcements.KIND, f"{a.id}:{row.id}", channel, payload,
                                             skipped, a.urgent, hold, announcement_id=a.id):
            deliveries.append({**ROW_DEFAULTS, **values, **stamps})
        inbox.append(announcements.inbox_row(a, row.id, now))
    return deliveries, inbox


def _pending_ids(keys: list[str]) -> list[int]:
    """Ids of the page's pending rows, found by their unique keys alone.

    (A condition on the status would let the database pick the status index and read every row queued
    so far, which grows with the fan-out running ahead of the sends.)
    """
    ids: list[int] = []
    for i in range(0, len(keys), KEYS_PER_QUERY):
        rows = db.execute(select(Delivery.id, Delivery.status).where(Delivery.dedup_key.in_(keys[i:i + KEYS_PER_QUERY])))
        ids += [row.id for row in rows if row.status == "pending"]
    return sorted(ids)


@job
def fanout(announcement_id: int, cursor: int) -> dict:
    """One page of the fan-out; queues its send batches and the next page after commit."""
    a = db.scalar(select(Announcement).where(Announcement.id == announcement_id).with_for_update())
    if a is None or a.status != "sending" or a.fanout_done or a.fanout_cursor != cursor:
        return {"skipped": True}
    now = utcnow()
    hold = messages.quiet_until(now, a.urgent)
    groups = announcements.group_rows(a, now, hold) if cursor == 0 else []
    insert_ignore_many(Delivery.__table__, groups, ["dedup_key"])
    people = audience.page(a, cursor, PAGE)
    deliveries, inbox = _rows(a, people, now, hold)
    inserted = insert_ignore_rows(Delivery.__table__, deliveries, VARYING, ["dedup_key"],
                                  returning=(Delivery.id, Delivery.status))
    insert_ignore_rows(InboxMessage.__table__, inbox, ("person_id", "dedup_key"), ["dedup_key"])
    if people:
        a.fanout_cursor, a.recipients = people[-1].id, a.recipients + len(people)
    a.fanout_done = len(people) < PAGE
    a.updated_at = now
    if hold is None:
        if len(inserted) == len(deliveries):  # the usual case: every row is new, and these are its pending ones
            ids = sorted(row.id for row in inserted if row.status == "pending")
            ids = _pending_ids([row["dedup_key"] for row in groups if row["status"] == "pending"]) + ids
        else:  # some existed already (a page repeated): whatever of the page is still pending
            ids = _pending_ids([row["dedup_key"] for row in groups + deliveries if row["status"] == "pending"])
        enqueue_batches(a.id, ids, BATCH // 4 if a.fanout_done else BATCH)
    if a.fanout_done:
        db.flush()
        announcements.finish_if_done(a.id)
    else:
        enqueue_fanout(a.id, a.fanout_cursor)
    return {"people": len(people), "deliveries": len(deliveries), "cursor": a.fanout_cursor, "done": a.fanout_done}


@job
def send_batch(announcement_id: int, ids: list[int]) -> dict:
    """Send a batch unless the announcement is paused or cancelled (the rows then stay as they are)."""
    status = db.scalar(select(Announcement.status).where(Announcement.id == announcement_id))
    db.commit()
    if status != "sending":
        return {"held": len(ids), "status": status}
    from jobs.delivery import send_deliveries

    result = send_deliveries(ids)  # its own unit of work (commits)
    announcements.finish_if_done(announcement_id)
    return {"sent": result}


def requeue_pending(announcement_id: int) -> int:
    """Queue (after commit) the announcement's due pending rows in batches (resume), by keyset on id."""
    now, after, queued = utcnow(), 0, 0
    while ids := db.scalars(select(Delivery.id).where(
            Delivery.announcement_id == announcement_id, Delivery.status == "pending", Delivery.id > after,
            or_(Delivery.not_before.is_(None), Delivery.not_before <= now)).order_by(Delivery.id).limit(BATCH * 10)).all():
        enqueue_batches(announcement_id, list(ids))
        queued, after = queued + len(ids), ids[-1]
    return queued


@job
def sweep_broadcasts(stale_seconds: int = STALE_SECONDS) -> dict:
    """Start due scheduled announcements, restart stalled fan-outs, mark finished ones done.

    Safe twice: starting is a conditional UPDATE and a duplicate fan-out chain stops at the cursor
    check.  Pending rows whose job was lost (a killed worker, Redis down) or whose hold ended are
    re-queued by ``jobs.delivery.sweep_deliveries``, which skips paused and cancelled announcements.
    """
    now = utcnow()
    started = announcements.start_due(now)
    stale = now - timedelta(seconds=stale_seconds)
    restarted, finished = [], []
    for a_id, done, cursor, updated in db.execute(select(
            Announcement.id, Announcement.fanout_done, Announcement.fanout_cursor, Announcement.updated_at)
            .where(Announcement.status == "sending", Announcement.id.not_in(started))).all():
        if not done and updated <= stale:
            enqueue_fanout(a_id, cursor)
            restarted.append(a_id)
        if done and announcements.finish_if_done(a_id):
            finished.append(a_id)
    return {"started": started, "restarted": restarted, "finished": finished}
