"""Capacity under a sign-up rush, on PostgreSQL with real concurrent requests."""

import threading
from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from server.errors import ServiceError
from server.extensions import db
from server.models import Competition, CompetitionEntry, Person
from server.models.competitions import CompetitionTeam
from server.services import competitions, txn
from tests.api import bearer, make_world
from tests.competition_helpers import entrant, make_competition

pytestmark = pytest.mark.postgres


def _all_at_once(calls) -> list:
    """Run every callable in its own thread, released together by a barrier; answers their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def _request(app, method: str, url: str, token: str):
    """One HTTP request through the whole stack (token, unit of work, commit in after_request)."""
    def call():
        response = app.test_client().open(url, method=method, headers=bearer(token))
        return response.status_code, response.get_json()
    return call


def _rush(app, competition_id: int, tokens: list[str]) -> list[tuple[int, dict]]:
    return _all_at_once([_request(app, "POST", f"/api/v1/competitions/{competition_id}/entries", t) for t in tokens])


def _service_sign_up(app, competition_id: int, person_id: int):
    """``sign_up`` in its own app context, session and commit (what one request does, minus HTTP)."""
    def call():
        with app.app_context():
            try:
                entry = txn.committed(lambda: competitions.sign_up(db.get(Person, person_id), competition_id))
                return "ok", entry.status
            except ServiceError as exc:
                db.rollback()
                return "refused", exc.code
            finally:
                db.remove()
    return call


def _entries(competition_id: int) -> list[CompetitionEntry]:
    db.expire_all()
    return list(db.scalars(select(CompetitionEntry).where(CompetitionEntry.competition_id == competition_id)
                           .order_by(CompetitionEntry.arrival_no, CompetitionEntry.id)))


def test_two_hundred_concurrent_sign_ups_for_ten_places(app):
    world = make_world()
    comp = make_competition(world, capacity=10)
    people = [entrant(world)[0].id for _ in range(200)]
    # Twenty of them tap twice: 220 sign-ups at once.
    # (At this scale the service is called directly: one process's Redis pool, which every HTTP request
    # uses for its token, allows 100 connections.)
    results = _all_at_once([_service_sign_up(app, comp.id, pid) for pid in people + people[:20]])
    assert Counter(results) == {("ok", "confirmed"): 10, ("ok", "waitlisted"): 190, ("refused", "already_entered"): 20}

    entries = _entries(comp.id)
    assert len(entries) == 200 and len({e.person_id for e in entries}) == 200  # no one twice
    # Arrival order: arrival numbers are taken under the competition's lock, one each, no gaps; the first
    # ten hold the places, the rest queue in that order, and the times taken under the lock agree.
    assert [e.arrival_no for e in entries] == list(range(1, 201))
    assert [e.status for e in entries] == ["confirmed"] * 10 + ["waitlisted"] * 190
    assert [e.status_changed_at for e in entries] == sorted(e.status_changed_at for e in entries)
    assert [competitions.waitlist_position(e) for e in entries[10:]] == list(range(1, 191))
    assert len({e.candidate_number for e in entries[:10]}) == 10
    # The numbers came from a bounded pool beside the requests' (220 threads, at most NUMBERING_CONNECTIONS).
    numbering = competitions._numbering_engine().pool
    assert numbering.checkedin() + numbering.checkedout() <= competitions.NUMBERING_CONNECTIONS


def test_sign_ups_over_http_in_a_rush(app):
    """The same through the whole stack (token, unit of work, commit in after_request), 80 at once."""
    world = make_world()
    comp = make_competition(world, capacity=10)
    people = [entrant(world) for _ in range(70)]
    results = _rush(app, comp.id, [t for _, t in people] + [t for _, t in people[:10]])
    assert Counter((status, body.get("status") or body["code"]) for status, body in results) == {
        (201, "confirmed"): 10, (201, "waitlisted"): 60, (409, "already_entered"): 10}
    positions = sorted(body["position"] for status, body in results if status == 201 and body["position"])
    assert positions == list(range(1, 61))
    assert len({e.person_id for e in _entries(comp.id)}) == 70


def test_an_organisation_quota_holds_under_a_rush(app):
    world = make_world()
    comp = make_competition(world, capacity=100, org_quota=5)
    tokens = [entrant(world)[1] for _ in range(60)]
    results = _rush(app, comp.id, tokens)
    assert Counter(status for status, _ in results) == {201: 5, 409: 55}
    assert {body["code"] for status, body in results if status == 409} == {"org_quota_full"}
    assert [e.status for e in _entries(comp.id)] == ["confirmed"] * 5


def test_withdrawals_racing_sign_ups_never_overbook(app):
    world = make_world()
    comp = make_competition(world, capacity=5)
    early = [entrant(world) for _ in range(5)]
    for _, token in early:
        app.test_client().post(f"/api/v1/competitions/{comp.id}/entries", headers=bearer(token))
    late = [entrant(world)[1] for _ in range(40)]
    url = f"/api/v1/competitions/{comp.id}/entries"
    _all_at_once([_request(app, "DELETE", url + "/mine", t) for _, t in early] +
                 [_request(app, "POST", url, t) for t in late])
    held = Counter(e.status for e in _entries(comp.id))
    assert held["withdrawn"] == 5 and held["confirmed"] + held["offered"] == 5
    assert held["confirmed"] + held["offered"] + held["waitlisted"] == 40


def _service(app, call):
    """``call()`` in its own app context, session and commit (what one request does, minus HTTP)."""
    def run():
        with app.app_context():
            try:
                result = call()
                db.commit()
                return "ok", result
            except ServiceError as exc:
                db.rollback()
                return "refused", exc.code
            finally:
                db.remove()
    return run


def test_a_rush_of_team_submissions_takes_whole_teams_or_waits_them(app):
    from tests.competition_helpers import assert_counters_exact, make_team

    world = make_world()
    comp = make_competition(world, capacity=10, entry_mode="team", team_min=2, team_max=3, org_quota=30)
    teams = [make_team(world, comp.id, 3) for _ in range(12)]

    def submit(team_id, captain_id):
        return lambda: competitions.submit_team(db.get(Person, captain_id), team_id).status

    results = _all_at_once([_service(app, submit(tid, people[0])) for tid, people in teams])
    # 36 members of one enterprise, its quota 30: ten teams get in, two are refused whole.
    assert Counter(results) == {("ok", "submitted"): 10, ("refused", "org_quota_full"): 2}
    entries = [e for e in _entries(comp.id) if e.status != "forming"]
    by_team = {}
    for e in entries:
        by_team.setdefault(e.team_id, set()).add((e.status, e.arrival_no))
    assert all(len(states) == 1 for states in by_team.values())  # a team moves as one, with one arrival number
    statuses = Counter(next(iter(s))[0] for s in by_team.values())
    assert statuses == {"confirmed": 3, "waitlisted": 7}  # 9 of 10 places: a fourth team of 3 does not fit
    order = sorted((next(iter(s))[1], next(iter(s))[0]) for s in by_team.values())
    assert [status for _, status in order] == ["confirmed"] * 3 + ["waitlisted"] * 7  # arrival order
    assert [arrival for arrival, _ in order] == list(range(1, 11))
    assert_counters_exact(comp.id)


def test_a_rush_of_joins_never_passes_team_max(app):
    from tests.competition_helpers import assert_counters_exact, make_team

    world = make_world()
    comp = make_competition(world, capacity=10, entry_mode="team", team_min=2, team_max=4)
    team_id, _ = make_team(world, comp.id, 1)
    code = db.get(CompetitionTeam, team_id).join_code
    tokens = [entrant(world)[1] for _ in range(30)]
    results = _all_at_once([_join(app, code, t) for t in tokens])
    assert Counter((status, body.get("code")) for status, body in results) == {(201, None): 3, (409, "team_full"): 27}
    assert db.get(CompetitionTeam, team_id).member_count == 4
    assert_counters_exact(comp.id)


def _join(app, code: str, token: str):
    def call():
        response = app.test_client().post("/api/v1/teams/join", json={"code": code}, headers=bearer(token))
        return response.status_code, response.get_json()
    return call


def test_counters_stay_exact_after_a_mixed_rush(app):
    """Sign-ups, withdrawals and removals at once; the counters equal a recount afterwards."""
    from tests.competition_helpers import assert_counters_exact

    world = make_world()
    comp = make_competition(world, capacity=8, org_quota=6)
    early = [entrant(world, org="factory" if i % 2 else "mill") for i in range(12)]
    for _, token in early:
        app.test_client().post(f"/api/v1/competitions/{comp.id}/entries", headers=bearer(token))
    late = [entrant(world, org="factory" if i % 2 else "mill")[1] for i in range(30)]
    url = f"/api/v1/competitions/{comp.id}/entries"
    _all_at_once([_request(app, "DELETE", url + "/mine", t) for _, t in early[::2]] +
                 [_request(app, "POST", url, t) for t in late])
    assert_counters_exact(comp.id)


# -- places as rows: claims that fail, claims that wait --------------------------------------------

def _in_thread(app, name: str, call) -> tuple[threading.Thread, list]:
    """``_service(app, call)`` in a named thread, started; its result lands in the returned list."""
    out: list = []

    def run():
        try:
            out.append(_service(app, call)())
        except RuntimeError as exc:  # _service removed the session: the transaction rolled back
            out.append(("failed", str(exc)))

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread, out


def _pause_after_seating(monkeypatch, thread_name: str, fail: bool):
    """In thread ``thread_name``, stop once the unit's outcome is decided (its places locked, its numbers not yet
    taken) until the returned ``go`` event, then fail (the request rolls back) or go on."""
    seated, go = threading.Event(), threading.Event()
    real = competitions._numbers

    def numbers(competition_id, **kwargs):
        if threading.current_thread().name == thread_name:
            seated.set()
            assert go.wait(60)
            if fail:
                raise RuntimeError("the request fails after claiming its place")
        return real(competition_id, **kwargs)

    monkeypatch.setattr(competitions, "_numbers", numbers)
    return seated, go


def _wait_until_blocked(app, seconds: float = 20) -> None:
    """Until another session of this database waits for a lock (the second request is queued on the first)."""
    import time

    from sqlalchemy import text

    engine = app.extensions["unionhub"]["engine"]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND wait_event_type = 'Lock'")).scalar():
                return
        time.sleep(0.02)
    raise AssertionError("the second request never waited for the first one's place")


def _go_once_blocked(app, go: threading.Event, *threads: threading.Thread) -> None:
    """Let the paused request go on once the second one waits for it, and wait for both."""
    try:
        _wait_until_blocked(app)
    finally:
        go.set()
    for thread in threads:
        thread.join(60)


def test_a_place_claimed_by_a_request_that_then_fails_goes_to_the_sign_up_waiting_for_it(app, monkeypatch):
    """The last place is being claimed when a second sign-up arrives: it waits for that claim instead of joining
    the waiting list (SKIP LOCKED alone would skip it); the claimer fails and rolls back, and the place is not
    lost: the second sign-up has it."""
    from tests.competition_helpers import assert_counters_exact

    world = make_world()
    comp = make_competition(world, capacity=1)
    doomed, second = entrant(world)[0].id, entrant(world)[0].id
    seated, go = _pause_after_seating(monkeypatch, "doomed", fail=True)
    first_thread, first_result = _in_thread(app, "doomed", lambda: competitions.sign_up(db.get(Person, doomed), comp.id))
    assert seated.wait(30)
    second_thread, second_result = _in_thread(app, "second",
                                              lambda: competitions.sign_up(db.get(Person, second), comp.id).status)
    _go_once_blocked(app, go, first_thread, second_thread)
    assert first_result == [("failed", "the request fails after claiming its place")]
    assert second_result == [("ok", "confirmed")]
    assert [(e.person_id, e.status, e.arrival_no) for e in _entries(comp.id)] == [(second, "confirmed", 1)]
    assert_counters_exact(comp.id)  # its place row holds it, and nobody waits


def _place_lock_free(app, competition_id: int, place_no: int) -> bool:
    """Whether another transaction could lock the place row now (``FOR UPDATE NOWAIT``)."""
    from sqlalchemy import text

    with app.extensions["unionhub"]["engine"].connect() as conn:
        try:
            conn.execute(text("SELECT place_no FROM competition_places WHERE competition_id = :c AND place_no = :p "
                              "FOR UPDATE NOWAIT"), {"c": competition_id, "p": place_no})
            return True
        except DBAPIError as exc:
            assert exc.orig.sqlstate == "55P03"  # lock_not_available
            return False
        finally:
            conn.rollback()


def test_a_sign_up_waiting_for_claims_holds_no_place_it_waited_for(app, monkeypatch):
    """Both places are being claimed when a third sign-up arrives: it waits for the first claim, finds that place
    taken, and waits for the second, holding nothing meanwhile.  (A wait over the free places inside one statement
    kept the rejected places locked while waiting for the next, and a few such sign-ups could deadlock: seen in
    the 220-sign-up rush, four backends aborted by PostgreSQL's deadlock detector.)"""
    from tests.competition_helpers import assert_counters_exact

    world = make_world()
    comp = make_competition(world, capacity=2)
    first, second, third = (entrant(world)[0].id for _ in range(3))
    seated_1, go_1 = _pause_after_seating(monkeypatch, "first", fail=False)
    seated_2, go_2 = _pause_after_seating(monkeypatch, "second", fail=False)
    t1, r1 = _in_thread(app, "first", lambda: competitions.sign_up(db.get(Person, first), comp.id).status)
    assert seated_1.wait(30)
    t2, r2 = _in_thread(app, "second", lambda: competitions.sign_up(db.get(Person, second), comp.id).status)
    assert seated_2.wait(30)
    t3, r3 = _in_thread(app, "third", lambda: competitions.sign_up(db.get(Person, third), comp.id).status)
    try:
        _wait_until_blocked(app)  # the third waits for the first's claim of place 1
        go_1.set()
        t1.join(60)
        _wait_until_blocked(app)  # ... then for the second's claim of place 2
        assert _place_lock_free(app, comp.id, 1)  # place 1 (taken by the first) is not held by the waiting third
    finally:
        go_1.set()
        go_2.set()
    for thread in (t2, t3):
        thread.join(60)
    assert (r1, r2, r3) == ([("ok", "confirmed")], [("ok", "confirmed")], [("ok", "waitlisted")])
    assert [(e.person_id, e.status) for e in _entries(comp.id)] == [(first, "confirmed"), (second, "confirmed"),
                                                                     (third, "waitlisted")]
    assert_counters_exact(comp.id)


def test_a_team_that_must_wait_keeps_the_free_places_from_a_team_behind_it(app, monkeypatch):
    """Two places are free; a team of three decides to wait (it locked the two places it could not use) and a team
    of two arrives meanwhile: it waits for the first team's decision, then sees it waiting and queues behind it
    (nobody overtakes a waiting team)."""
    from tests.competition_helpers import assert_counters_exact, make_team

    world = make_world()
    comp = make_competition(world, capacity=4, entry_mode="team", team_min=2, team_max=3)
    first_in, big, small = make_team(world, comp.id, 2), make_team(world, comp.id, 3), make_team(world, comp.id, 2)
    competitions.submit_team(db.get(Person, first_in[1][0]), first_in[0])
    db.commit()
    seated, go = _pause_after_seating(monkeypatch, "big", fail=False)

    def submit(team):
        return lambda: competitions.submit_team(db.get(Person, team[1][0]), team[0]).id

    big_thread, big_result = _in_thread(app, "big", submit(big))
    assert seated.wait(30)
    small_thread, small_result = _in_thread(app, "small", submit(small))
    _go_once_blocked(app, go, big_thread, small_thread)
    assert big_result == [("ok", big[0])] and small_result == [("ok", small[0])]
    waiting = competitions.waitlist_positions(comp.id)
    by_team = {e.team_id: waiting.get(e.id) for e in _entries(comp.id)}
    assert (by_team[first_in[0]], by_team[big[0]], by_team[small[0]]) == (None, 1, 2)
    assert competitions.places_left(db.get(Competition, comp.id)) == 2
    assert_counters_exact(comp.id)


def test_sign_ups_on_connections_the_database_dropped_answer_503_then_succeed(app):
    """Sign-up runs its statements straight on the driver (request pool and numbering pool): a connection the
    server ended is still a 503 ``service_busy`` (never a 500), the pool is renewed, and the worker's next try
    is entered, once."""
    import psycopg

    world = make_world()
    comp = make_competition(world, capacity=2)
    people = [entrant(world) for _ in range(6)]
    client = app.test_client()
    first = client.post(f"/api/v1/competitions/{comp.id}/entries", headers=bearer(people[0][1]))
    assert first.status_code == 201  # both pools now hold connections
    engine = app.extensions["unionhub"]["engine"]
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND pid <> pg_backend_pid()").fetchall()
    for _, token in people[1:]:
        statuses = []
        while not statuses or statuses[-1] == 503 and len(statuses) <= 12:
            response = client.post(f"/api/v1/competitions/{comp.id}/entries", headers=bearer(token))
            statuses.append(response.status_code)
            if response.status_code == 503:
                assert response.get_json()["code"] == "service_busy" and response.headers["Retry-After"] == "2"
        assert statuses[-1] == 201, statuses
    entries = _entries(comp.id)
    assert sorted(e.person_id for e in entries) == sorted(p.id for p, _ in people)
    assert Counter(e.status for e in entries) == {"confirmed": 2, "waitlisted": 4}
