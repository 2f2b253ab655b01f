"""A brand-new follower's pushes arriving at once create one person, and every one of them succeeds (PostgreSQL)."""

import threading

import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import Person
from server.services import people

THREADS = 16
pytestmark = pytest.mark.postgres


def test_simultaneous_follows_of_a_new_follower_make_one_person(app):
    results, errors, lock = [], [], threading.Lock()
    barrier = threading.Barrier(THREADS)

    def follow() -> None:
        with app.app_context():
            try:
                barrier.wait()
                person, is_new = people.follow("oRushFollower")
                db.commit()
                with lock:
                    results.append((person.id, is_new))
            except Exception as exc:  # noqa: BLE001 - any error fails the test below
                db.rollback()
                with lock:
                    errors.append(repr(exc))
            finally:
                db.remove()

    threads = [threading.Thread(target=follow) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len({pid for pid, _ in results}) == 1 and [new for _, new in results].count(True) == 1
    with app.app_context():
        assert db.scalar(select(func.count()).select_from(Person).where(Person.oa_openid == "oRushFollower")) == 1
        assert db.scalar(select(Person.oa_cs_left).where(Person.oa_openid == "oRushFollower")) == 3
