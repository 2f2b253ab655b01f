"""The RQ queues, by name, highest priority first.  Workers listen to all of them in this order."""

from __future__ import annotations

from rq import Queue

from server.extensions import get_redis

#: Replies and notifications a worker is waiting for (a bot's slow answer, "your application was approved").
HIGH = "high"
#: Ordinary work: reminders, exports, single notifications.
DEFAULT = "default"
#: Bulk work: announcement fan-out batches.
BULK = "bulk"

ALL = (HIGH, DEFAULT, BULK)


def get_queue(name: str = DEFAULT, connection=None) -> Queue:
    """The queue ``name`` on the app's Redis (``connection``: this Redis client instead, outside an app context)."""
    if name not in ALL:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection or get_redis())


def enqueue(func, *args, queue: str = DEFAULT, **kwargs):
    """Enqueue ``func`` now.  Services should use :func:`enqueue_after_commit` instead."""
    return get_queue(queue).enqueue(func, *args, **kwargs)


def enqueue_after_commit(func, *args, queue: str = DEFAULT, job_id: str | None = None, **kwargs) -> None:
    """Enqueue ``func(*args)`` once the current transaction commits; dropped on rollback.

    Pass ids, never ORM objects.  ``job_id`` makes a repeated enqueue of the
    same logical job collapse into one (RQ refuses duplicate ids while queued).
    """
    from server.extensions import after_commit, db

    target = get_queue(queue)  # bound now: the hook runs inside commit, outside any request
    options = {"job_id": job_id} if job_id else {}

    def _enqueue():
        target.enqueue(func, *args, **options, **kwargs)

    after_commit(db(), _enqueue)
