"""Operational jobs: a round-trip check that a worker runs jobs and reaches the database."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone

from sqlalchemy import func, select

from server.extensions import db
from server.models import Organisation

from .base import job


@job
def ping(marker: str) -> dict:
    """Answer with where and when it ran and what the database holds; used by tests and `unionhub check`."""
    return {
        "marker": marker,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "at": datetime.now(timezone.utc).isoformat(),
        "organisations": db.scalar(select(func.count()).select_from(Organisation)),
    }


@job
def heartbeat() -> str:
    """Records in Redis that the scheduler and a worker are alive (shown by /readyz?verbose later)."""
    from server.extensions import get_redis

    now = datetime.now(timezone.utc).isoformat()
    get_redis().set("unionhub:heartbeat", now, ex=3600)
    return now
