"""Process-wide handles: the database session, Redis, RQ queues and the API.

``db`` is a scoped session: one SQLAlchemy session per thread (per request
in the web app, per job in a worker).  ``create_app`` binds it to the engine
of the app's configuration; ``teardown_appcontext`` removes it.
"""

from __future__ import annotations

import logging

from flask import current_app
from flask_smorest import Api
from redis import Redis
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

SessionFactory = sessionmaker(expire_on_commit=False, autoflush=True)
db: scoped_session[Session] = scoped_session(SessionFactory)

api = Api()


def get_engine() -> Engine:
    return current_app.extensions["unionhub"]["engine"]


def get_redis() -> Redis:
    """The Redis client of the current app (bytes in, bytes out: RQ needs that)."""
    return current_app.extensions["unionhub"]["redis"]


def after_commit(session: Session, func, *args, **kwargs) -> None:
    """Run ``func(*args, **kwargs)`` once the session's transaction commits.

    This is how services enqueue jobs: the job only exists once the rows it
    will read are committed, and a rollback drops it.
    """
    if not session.in_transaction():
        session.begin()  # so that a rollback ends a transaction and drops the action
    session.info.setdefault("after_commit", []).append((func, args, kwargs))


@event.listens_for(SessionFactory, "after_commit")
def _run_after_commit(session: Session) -> None:
    pending = session.info.pop("after_commit", [])
    for func, args, kwargs in pending:
        try:
            func(*args, **kwargs)
        except Exception:  # the rows are committed; sweepers pick up what was not enqueued
            logging.getLogger("unionhub").exception("after-commit action %r failed", func)


@event.listens_for(SessionFactory, "after_transaction_end")
def _drop_after_commit(session: Session, transaction) -> None:
    # After a commit the actions already ran; after a rollback they must not.
    if transaction.parent is None and not transaction.nested:
        session.info.pop("after_commit", None)
