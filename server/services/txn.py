"""Transaction helpers shared by services: savepoints that turn a unique violation into a
:class:`ServiceError`, and "insert unless it exists" on SQLite and PostgreSQL.

    with savepoint_or(Conflict("id_number_taken", "...")):
        person.id_number_hash = digest        # flushed inside the savepoint

Only the savepoint is rolled back; the request's transaction goes on and
the error reaches the client as usual.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from server.errors import ServiceError
from server.extensions import db


def begin_savepoint():
    """``db.begin_nested()``, made safe on SQLite.

    pysqlite opens its transaction lazily, at the first write; a SAVEPOINT
    issued before that starts a transaction of its own that RELEASE commits,
    so a later rollback of the request could not undo it.  Opening the
    transaction first keeps the savepoint inside the unit of work.
    """
    conn = db.connection()
    if conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
        conn.exec_driver_sql("BEGIN")
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
