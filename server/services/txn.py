"""Transaction helpers shared by services: savepoints that turn a unique violation into a
:class:`ServiceError`, "insert unless it exists" on SQLite and PostgreSQL, and (for a handler's
or job's unit of work) a commit retried when PostgreSQL aborts it for a deadlock.

    with savepoint_or(Conflict("id_number_taken", "...")):
        person.id_number_hash = digest        # flushed inside the savepoint

Only the savepoint is rolled back; the request's transaction goes on and
the error reaches the client as usual.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from typing import Callable, TypeVar

from sqlalchemy import Integer, Table, Text, bindparam, cast, func, select, true
from sqlalchemy.dialects.postgresql import JSON as PG_JSON
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError

from server.errors import ServiceError
from server.extensions import SessionFactory, db

log = logging.getLogger("unionhub.txn")
T = TypeVar("T")
#: SQLSTATEs of a transaction PostgreSQL aborted only because of others running beside it (deadlock_detected,
#: serialization_failure): run again, it normally passes (PostgreSQL's own advice).
RETRYABLE_SQLSTATES = ("40P01", "40001")


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and (getattr(exc.orig, "sqlstate", None) or "") in RETRYABLE_SQLSTATES


def committed(work: Callable[[], T], attempts: int = 3) -> T:
    """Run ``work`` (a whole unit of work: it must read what it needs itself) and commit it; when PostgreSQL
    aborts the transaction for a deadlock or a serialization failure, roll back and run it again, up to
    ``attempts`` times in all.  For handlers and jobs (services flush, never commit).  A last failure is
    raised (a deadlock that keeps coming back is a bug, and answered as one: 500)."""
    for attempt in range(1, attempts + 1):
        try:
            result = work()
            db.commit()
            return result
        except DBAPIError as exc:
            db.rollback()
            if attempt == attempts or not retryable(exc):
                raise
            log.warning("transaction aborted (%s), running it again (%d/%d)", exc.orig.sqlstate, attempt + 1, attempts)
    raise AssertionError("unreachable")


def begin_savepoint():
    """``db.begin_nested()``, made safe on SQLite.

    pysqlite opens its transaction lazily, at the first write; a SAVEPOINT
    issued before that starts a transaction of its own that RELEASE commits,
    so a later rollback of the request could not undo it.  Opening the
    transaction first keeps the savepoint inside the unit of work.  It is opened
    ``IMMEDIATE`` (the write lock at once, waiting for other writers as any write
    does): a deferred ``BEGIN`` followed by a read and then a write fails at once
    with "database is locked" when another connection committed a write in
    between (SQLite cannot move the read's snapshot forward), which a bulk
    approval beside ordinary traffic did (found by fuzzing).
    """
    conn = db.connection()
    if conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    return db.begin_nested()


@contextmanager
def savepoint_or(error: ServiceError):
    """Run the block in a savepoint and flush; a unique/constraint violation raises ``error`` instead."""
    try:
        with begin_savepoint():
            yield
    except IntegrityError as exc:
        raise error from exc


def insert_ignore(table: Table, values: dict, index_elements: list[str]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING; answers the number of rows inserted (0 or 1)."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=index_elements)
    # SQLAlchemy 2.1 with psycopg reports -1 for an INSERT's rowcount unless asked to keep it.
    result = db.execute(stmt.execution_options(preserve_rowcount=True))
    return result.rowcount


def insert_ignore_many(table: Table, rows: list[dict], index_elements: list[str]) -> None:
    """Many rows in one INSERT ... ON CONFLICT DO NOTHING (executemany); rows must share their keys."""
    if rows:
        insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
        db.execute(insert(table).on_conflict_do_nothing(index_elements=index_elements), rows)


def _shared_key(row: dict, varying: tuple[str, ...]) -> tuple:
    # Rows are grouped by their other values; a dict or list counts by identity (rows made from one
    # rendered payload share the object), so equal copies only make more groups, never wrong ones.
    return tuple((k, id(v) if isinstance(v, (dict, list)) else v) for k, v in row.items() if k not in varying)


def insert_ignore_rows(table: Table, rows: list[dict], varying: tuple[str, ...], index_elements: list[str],
                       returning: tuple = ()) -> list:
    """Many rows as INSERT ... SELECT from one JSON parameter ... ON CONFLICT DO NOTHING: one statement per
    group of rows that differ only in ``varying`` (integer or text columns), whose other values are bound
    once; the ``returning`` columns of the rows inserted (not of those that already existed).

    For thousands of rows that share most of their values (a broadcast's page): executemany would bind and
    convert every value of every row (a JSON payload encoded per row), on the client and on the server.
    Rows must share their keys.
    """
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(_shared_key(row, varying), []).append(row)
    postgres = db.get_bind().dialect.name == "postgresql"
    insert = pg_insert if postgres else sqlite_insert
    out: list = []
    for group in groups.values():
        first, values = group[0], json.dumps([[row[k] for k in varying] for row in group], ensure_ascii=False)
        if postgres:
            source = func.json_array_elements(cast(bindparam("rows", values, type_=Text), PG_JSON)).table_valued("value")
            picked = [source.c.value.op("->>")(i) for i in range(len(varying))]
            picked = [cast(p, table.c[k].type) if isinstance(table.c[k].type, Integer) else p
                      for p, k in zip(picked, varying)]
        else:
            source = func.json_each(bindparam("rows", values, type_=Text)).table_valued("value")
            picked = [func.json_extract(source.c.value, f"$[{i}]") for i in range(len(varying))]
        shared = [k for k in first if k not in varying]
        constants = [bindparam(f"v_{k}", first[k], type_=table.c[k].type) for k in shared]
        # (SQLite needs the WHERE to tell the SELECT's end from the upsert clause.)
        stmt = insert(table).from_select([*varying, *shared], select(*picked, *constants).select_from(source)
                                         .where(true())).on_conflict_do_nothing(index_elements=index_elements)
        if returning:
            out += db.execute(stmt.returning(*returning)).all()
        else:
            db.execute(stmt)
    return out


@contextmanager
def one_connection():
    """Run the block's transactions (each ended by ``db.commit()``) on one pooled connection.

    A session gives its connection back to the pool at every commit, and the next transaction checks
    one out again: on PostgreSQL a reset (ROLLBACK) on return, one more round trip per transaction (and
    a ping on checkout after an idle spell, see ``server.extensions.handle_stale_connections``).  A loop of many short transactions (a sender recording results and claiming
    rows every few sends) keeps one connection instead.  Nothing changes while the current session is
    already in a transaction (its uncommitted work stays visible).
    """
    current = db()
    if current.in_transaction():
        yield
        return
    with db.get_bind().connect() as conn:
        db.registry.set(SessionFactory(bind=conn))
        try:
            yield
        finally:
            db().close()
            db.registry.set(current)
