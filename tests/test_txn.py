"""server.services.txn: bulk "insert unless it exists" from one JSON parameter, one connection for many commits,
and a unit of work run again after a deadlock."""

import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import Delivery, Person, utcnow
from server.services.txn import insert_ignore_rows, one_connection


def _person(openid: str) -> int:
    person = Person(oa_openid=openid, oa_subscribed=True)
    db.add(person)
    db.flush()
    return person.id


def test_insert_ignore_rows_groups_shared_values_and_returns_only_new_rows():
    people = [_person(f"o-txn-{i}") for i in range(3)]
    now = utcnow()
    template = {"template_id": "t1", "data": {"thing1": "通知“引号”\\ 和换行\n"}}
    custom = {"text": "你好"}

    def row(pid, channel, payload, status="pending", reason=None):
        return {"person_id": pid, "dedup_key": f"txn:{pid}:{channel}", "channel": channel, "status": status,
                "skip_reason": reason, "kind": "announcement", "payload": payload, "attempts": 0,
                "created_at": now, "updated_at": now}

    rows = [row(people[0], "oa_template", template), row(people[1], "oa_template", template),
            row(people[2], "oa_custom", custom), row(people[2], "oa_template", {}, "skipped", "not_following")]
    varying = ("person_id", "dedup_key", "channel", "status", "skip_reason")
    inserted = insert_ignore_rows(Delivery.__table__, rows, varying, ["dedup_key"],
                                  returning=(Delivery.dedup_key, Delivery.status))
    assert sorted(r.dedup_key for r in inserted) == sorted(r["dedup_key"] for r in rows)
    got = {d.dedup_key: d for d in db.scalars(select(Delivery))}
    assert got[f"txn:{people[1]}:oa_template"].payload == template
    assert got[f"txn:{people[2]}:oa_custom"].payload == custom
    skipped = got[f"txn:{people[2]}:oa_template"]
    assert (skipped.status, skipped.skip_reason, skipped.payload) == ("skipped", "not_following", {})
    assert got[f"txn:{people[0]}:oa_template"].created_at == now

    # Again with one new row: only that one is inserted (and returned); the others are left as they are.
    db.execute(Delivery.__table__.update().values(status="sent"))
    new = _person("o-txn-new")
    again = insert_ignore_rows(Delivery.__table__, rows + [row(new, "oa_template", template)], varying,
                               ["dedup_key"], returning=(Delivery.dedup_key,))
    assert [r.dedup_key for r in again] == [f"txn:{new}:oa_template"]
    assert db.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent")) == 4
    assert insert_ignore_rows(Delivery.__table__, [], varying, ["dedup_key"]) == []


def test_one_connection_commits_each_transaction_on_one_connection():
    db.commit()
    with one_connection():
        conn = db.connection()
        _person("o-one-1")
        db.commit()
        _person("o-one-2")
        db.rollback()
        _person("o-one-3")
        db.commit()
        assert db.connection().connection.dbapi_connection is conn.connection.dbapi_connection
    db.remove()
    assert sorted(db.scalars(select(Person.oa_openid).where(Person.oa_openid.like("o-one-%")))) == ["o-one-1", "o-one-3"]


def test_one_connection_leaves_a_transaction_in_progress_alone():
    _person("o-open")  # not committed yet
    with one_connection():
        assert db.scalar(select(Person.id).where(Person.oa_openid == "o-open")) is not None
    db.rollback()
    assert db.scalar(select(Person.id).where(Person.oa_openid == "o-open")) is None


def test_committed_runs_again_only_after_a_deadlock_or_serialization_failure(app):
    import psycopg.errors
    from sqlalchemy.exc import IntegrityError, OperationalError

    from server.services.txn import committed

    def failing(error, times):
        calls = []

        def work():
            calls.append(1)
            if len(calls) <= times:
                raise error
            return len(calls)

        return work, calls

    work, calls = failing(OperationalError("x", {}, psycopg.errors.SerializationFailure("could not serialize")), 2)
    assert committed(work) == 3  # two aborted attempts, the third passes
    work, calls = failing(OperationalError("x", {}, psycopg.errors.DeadlockDetected("deadlock")), 5)
    with pytest.raises(OperationalError):
        committed(work)
    assert len(calls) == 3  # attempts=3 in all
    work, calls = failing(IntegrityError("x", {}, psycopg.errors.UniqueViolation("duplicate")), 5)
    with pytest.raises(IntegrityError):
        committed(work)
    assert len(calls) == 1  # not a transient failure: never run again


def test_a_savepoint_on_sqlite_holds_the_write_lock_from_its_begin(app):
    """A deferred BEGIN, a read, another connection's commit, then a write: SQLite refuses the write at once
    ("database is locked", found by fuzzing bulk approval). The unit of work takes the write lock when it begins."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from server.errors import backend_unavailable
    from server.services.txn import begin_savepoint

    engine = app.extensions["unionhub"]["engine"]
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's locking")
    with begin_savepoint():
        db.scalar(select(func.count()).select_from(Person))
        other = sqlite3.connect(engine.url.database, timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("INSERT INTO people (oa_openid, oa_subscribed, created_at, updated_at) "
                              "VALUES ('o-other', 1, '2026-01-01', '2026-01-01')")
        finally:
            other.close()
        _person("o-savepoint")  # the request's own write goes through
    db.commit()
    assert db.scalar(select(func.count()).select_from(Person)) == 1
    busy = OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))
    assert backend_unavailable(busy)  # past the busy timeout: 503 service_busy, not a 500
