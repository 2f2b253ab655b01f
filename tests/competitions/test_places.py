"""Places as rows: capacity edits, what a capacity raise does, and the 0009 migration's backfill."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import create_engine, select, text

from server.extensions import db
from server.models import Competition
from server.models.competitions import CompetitionPlace
from tests.api import bearer, staff_login
from tests.competition_helpers import assert_counters_exact, entrant, entry_of, make_competition, sign_up

BASE = "/api/admin/v1/competitions"


def _places(competition_id: int) -> list[tuple[int, int | None]]:
    return [tuple(r) for r in db.execute(select(CompetitionPlace.place_no, CompetitionPlace.entry_id)
                                         .where(CompetitionPlace.competition_id == competition_id)
                                         .order_by(CompetitionPlace.place_no))]


def test_a_capacity_raise_adds_free_places_that_newcomers_still_queue_for(client, world):
    """A raise does not promote by itself (staff choose whom to promote), and a newcomer does not take a new place
    ahead of the waiting list: they queue behind it."""
    organiser = bearer(staff_login(client, "city_organiser"))
    comp = make_competition(world, capacity=1)
    people = [entrant(world) for _ in range(3)]
    for _, token in people[:2]:
        sign_up(client, token, comp.id)
    assert client.patch(f"{BASE}/{comp.id}", json={"capacity": 3}, headers=organiser).status_code == 200
    assert len(_places(comp.id)) == 3
    late = sign_up(client, people[2][1], comp.id).get_json()
    assert (late["status"], late["position"]) == ("waitlisted", 2)
    detail = client.get(f"{BASE}/{comp.id}", headers=organiser).get_json()
    assert (detail["places_left"], detail["waitlist_length"]) == (2, 2)
    second = entry_of(people[2][0], comp.id)  # staff may promote out of order, by hand
    promoted = client.post(f"{BASE}/{comp.id}/entries/{second.id}/promote", json={}, headers=organiser).get_json()
    assert promoted["status"] == "offered"
    assert_counters_exact(comp.id)


def test_a_capacity_cut_removes_free_places_only(client, world):
    organiser = bearer(staff_login(client, "city_organiser"))
    comp = make_competition(world, capacity=5)
    for _ in range(3):
        sign_up(client, entrant(world)[1], comp.id)
    held = [e for _, e in _places(comp.id) if e]
    assert len(held) == 3
    refused = client.patch(f"{BASE}/{comp.id}", json={"capacity": 2}, headers=organiser)
    assert refused.status_code == 422 and "capacity" in refused.get_json()["errors"]
    assert len(_places(comp.id)) == 5
    assert client.patch(f"{BASE}/{comp.id}", json={"capacity": 3}, headers=organiser).status_code == 200
    assert sorted(e for _, e in _places(comp.id)) == sorted(held)  # the held places stay, the free ones went
    assert client.get(f"{BASE}/{comp.id}", headers=organiser).get_json()["places_left"] == 0
    assert sign_up(client, entrant(world)[1], comp.id).get_json()["status"] == "waitlisted"
    assert_counters_exact(comp.id)


def test_the_competition_list_counts_places_and_waiting_lists(client, world):
    small, big = make_competition(world, capacity=1), make_competition(world, name="另一场竞赛", capacity=4)
    for _ in range(3):
        sign_up(client, entrant(world)[1], small.id)
    sign_up(client, entrant(world)[1], big.id)
    listed = {c["id"]: (c["places_left"], c["waitlist_length"])
              for c in client.get("/api/v1/competitions").get_json()}
    assert listed == {small.id: (0, 2), big.id: (3, 0)}


def test_the_migration_gives_existing_competitions_their_places(tmp_path):
    """0009 backfills the place rows (one per entry holding a place) and the counters; its downgrade puts the
    competition's counters back."""
    from server.db import downgrade, upgrade

    engine = create_engine(f"sqlite:///{tmp_path / 'backfill.db'}")
    upgrade(engine, "0008")
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organisations (id, kind, name, path, active, created_at, updated_at) "
                          "VALUES (1, 'city', '市总工会', '/1/', 1, :now, :now)"), {"now": now})
        for pid in range(1, 6):
            conn.execute(text("INSERT INTO people (id, is_member, oa_subscribed, created_at, updated_at) "
                              "VALUES (:id, 1, 0, :now, :now)"), {"id": pid, "now": now})
        conn.execute(text(
            "INSERT INTO competitions (id, name, trade, level, organiser_org_id, signup_start, signup_end, capacity, "
            "eligibility, entry_mode, needs_approval, theory_weight, practical_weight, status, created_at, updated_at, "
            "org_quota_kind, offer_hours, last_candidate_no, held_count, waitlisted_count, arrival_seq) VALUES "
            "(1, '焊工竞赛', '焊工', 'city', 1, :start, :end, 3, '{}', 'individual', 0, 30, 70, 'published', :now, "
            ":now, 'enterprise', 48, 2, 3, 1, 5)"),
            {"start": now - timedelta(days=1), "end": now + timedelta(days=1), "now": now})
        for eid, status in enumerate(["confirmed", "withdrawn", "offered", "pending_approval", "waitlisted"], 1):
            conn.execute(text(
                "INSERT INTO competition_entries (id, competition_id, person_id, status, status_changed_at, "
                "admission_token, created_at, updated_at, arrival_no) VALUES (:id, 1, :id, :status, :now, :token, "
                ":now, :now, :id)"), {"id": eid, "status": status, "now": now, "token": f"t{eid}"})
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT place_no, entry_id FROM competition_places ORDER BY place_no")).all() == [
            (1, 1), (2, 3), (3, 4)]
        assert conn.execute(text("SELECT competition_id, last_arrival_no, last_candidate_no "
                                 "FROM competition_counters")).all() == [(1, 5, 2)]
        conn.execute(text("UPDATE competition_places SET entry_id = NULL WHERE entry_id = 4"))
        conn.commit()
    downgrade(engine, "0008")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT held_count, waitlisted_count, arrival_seq, last_candidate_no "
                                 "FROM competitions")).all() == [(2, 1, 5, 2)]
    engine.dispose()


def test_a_new_competition_gets_its_places_and_counters(world):
    comp = make_competition(world, capacity=4)
    assert _places(comp.id) == [(1, None), (2, None), (3, None), (4, None)]
    assert_counters_exact(comp.id)
    assert db.get(Competition, comp.id).capacity == 4
