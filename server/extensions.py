"""Process-wide handles: the database session, Redis, RQ queues and the API.

``db`` is a scoped session: one SQLAlchemy session per thread (per request
in the web app, per job in a worker).  ``create_app`` binds it to the engine
of the app's configuration; ``teardown_appcontext`` removes it.
"""

from __future__ import annotations

import logging
import random
import time

from flask import current_app
from flask_smorest import Api
from redis import Redis
from sqlalchemy import event, exc
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


#: A pooled connection unused for longer than this is pinged before it is handed out (handle_stale_connections).
PING_AFTER_IDLE_SECONDS = 5.0


def handle_stale_connections(engine: Engine, idle: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Disconnect handling without ``pool_pre_ping``: ping a pooled connection before use only when it has been
    idle for ``idle`` seconds or more.

    ``pool_pre_ping`` would cost a round trip on every checkout, i.e. on every request.  Connections go stale
    when they sit unused (the server restarted meanwhile, a proxy or firewall dropped an idle connection) and
    those are still checked: a failed ping invalidates the pool (every connection older than the failure is
    replaced) and the checkout is retried on a new connection, as ``pool_pre_ping`` does.  What this gives up:
    a connection used within the last ``idle`` seconds is not pinged, so after a database restart under load the
    requests that were already in flight (as with ``pool_pre_ping``) and those that check a connection out before
    the first failure is seen fail once: SQLAlchemy's disconnect handling then invalidates the connection and,
    normally, the whole pool (each stale connection fails at most once), and the app answers those requests
    503 ``service_busy`` with Retry-After (``server.errors``), never 500.  ``pool_recycle`` still replaces
    connections older than half an hour.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _idle_since(dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, proxy):
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle:
            return
        try:
            dialect.do_ping(dbapi_conn)
            dbapi_conn.rollback()  # end the transaction the ping began: the connection is handed out idle
        except dialect.loaded_dbapi.Error as err:
            if dialect.is_disconnect(err, dbapi_conn, None):
                raise exc.InvalidatePoolError() from err  # the pool retries the checkout on a new connection
            raise


def request_id(given: str | None) -> str:
    """The id a response carries in ``X-Request-ID``: the proxy's when it sent a short, printable one (it is
    echoed), else a new one: 128 random bits in hex, as ``uuid4().hex``, from the process's ``random``
    generator (seeded from the OS, and again in every forked worker): an id only has to be unique, not
    secret, and this needs no system call (0.4 us against 0.7 us for ``secrets.token_hex(16)``)."""
    if given and len(given) <= 200 and given.isprintable():
        return given
    return "%032x" % random.getrandbits(128)
