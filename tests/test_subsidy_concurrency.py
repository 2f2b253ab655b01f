"""Approval limits hold under real concurrency: 64 threads, each with its own session and commit (PostgreSQL)."""

import threading
from collections import Counter
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from server.errors import ServiceError
from server.extensions import db
from server.models import Person, Staff, SubsidyApplication, SubsidyProgram
from server.services import subsidies
from tests.api import make_world

THREADS = 64
pytestmark = pytest.mark.postgres


def _applications(world, people: int, per_person: int, amount: int) -> list[int]:
    persons = [Person(real_name=f"工人{i}", org_id=world.orgs["factory"].id, is_member=True) for i in range(people)]
    db.add_all(persons)
    db.flush()
    apps = [SubsidyApplication(program_id=world.program.id, person_id=p.id, org_id=p.org_id, kind="skill",
                               status="submitted", review_level=1, requested_fen=amount,
                               submitted_at=datetime.now(timezone.utc))
            for p in persons for _ in range(per_person)]
    db.add_all(apps)
    db.commit()
    return [a.id for a in apps]


def _race(app, app_ids: list[int], staff_id: int) -> Counter:
    """Approve every application at once, one thread each; count the outcomes."""
    outcomes: Counter = Counter()
    lock, barrier = threading.Lock(), threading.Barrier(len(app_ids))

    def approve(app_id: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                staff = db.get(Staff, staff_id)
                subsidies.decide_application(staff, subsidies.get_staff_application(staff, app_id, lock=True),
                                             "approve")
                db.commit()
                result = "approved"
            except ServiceError as exc:
                db.rollback()
                result = exc.code
            finally:
                db.remove()
            with lock:
                outcomes[result] += 1

    threads = [threading.Thread(target=approve, args=(i,)) for i in app_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(outcomes.values()) == len(app_ids), outcomes
    return outcomes


def _totals(program_id: int) -> tuple[int, int, int]:
    db.expire_all()
    program = db.get(SubsidyProgram, program_id)
    approved = db.scalar(select(func.count()).select_from(SubsidyApplication).where(
        SubsidyApplication.program_id == program_id, SubsidyApplication.status == "approved"))
    return program.committed_fen, program.approved_people, approved


def test_budget_for_exactly_ten_approvals(app):
    world = make_world(review_levels=1, budget_fen=10 * 100_000, max_people=1000)
    ids = _applications(world, THREADS, 1, 100_000)
    outcomes = _race(app, ids, world.staff["city_reviewer"].id)
    assert outcomes == Counter({"approved": 10, "budget_exhausted": THREADS - 10})
    assert _totals(world.program.id) == (1_000_000, 10, 10)


def test_places_for_exactly_seven_people(app):
    world = make_world(review_levels=1, budget_fen=100 * 100_000, max_people=7)
    ids = _applications(world, THREADS, 1, 100_000)
    outcomes = _race(app, ids, world.staff["city_reviewer"].id)
    assert outcomes == Counter({"approved": 7, "places_exhausted": THREADS - 7})
    assert _totals(world.program.id) == (700_000, 7, 7)


def test_per_person_cap_with_one_person_applying_many_times(app):
    world = make_world(review_levels=1, per_person_cap_fen=250_000)
    ids = _applications(world, 1, THREADS, 100_000)
    outcomes = _race(app, ids, world.staff["city_reviewer"].id)
    assert outcomes == Counter({"approved": 2, "cap_exceeded": THREADS - 2})
    assert _totals(world.program.id) == (200_000, 1, 2)
