"""Skill competitions as a worker meets them in the mini-program."""

from datetime import datetime, timedelta, timezone

import pytest

from jobs.competitions import sweep_offers
from server.extensions import db
from tests.api import assert_error, bearer, login, make_world, worker
from tests.competition_helpers import entrant, entry_of, inbox_titles, make_competition, sign_up


@pytest.fixture
def world():
    return make_world()


def _detail(client, cid, token=None):
    response = client.get(f"/api/v1/competitions/{cid}", headers=bearer(token) if token else {})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_places_fill_then_the_waiting_list_grows_in_arrival_order(client, world):
    comp = make_competition(world, capacity=2)
    people = [entrant(world) for _ in range(4)]
    answers = [sign_up(client, token, comp.id) for _, token in people]
    assert [a.status_code for a in answers] == [201] * 4
    bodies = [a.get_json() for a in answers]
    assert [b["status"] for b in bodies] == ["confirmed", "confirmed", "waitlisted", "waitlisted"]
    assert [b["position"] for b in bodies] == [None, None, 1, 2]
    assert bodies[0]["candidate_number"] != bodies[1]["candidate_number"]
    assert bodies[0]["admission_code"].startswith("UHE:") and bodies[2]["admission_code"] is None
    detail = _detail(client, comp.id, people[3][1])
    assert (detail["places_left"], detail["waitlist_length"], detail["my_status"]) == (0, 2, "waitlisted")
    assert detail["my_entry"]["position"] == 2 and "venue_code" not in detail
    assert "焊工" in "".join(detail["eligibility_text"])
    anonymous = _detail(client, comp.id)
    assert "my_status" not in anonymous and anonymous["places_left"] == 0


def test_sign_up_through_login_and_profile(client, world):
    comp = make_competition(world)
    token, _ = worker(client, world, "welder01", trade="焊工", skill_level="technician")
    body = sign_up(client, token, comp.id).get_json()
    assert body["status"] == "confirmed" and body["competition_name"] == comp.name
    mine = client.get("/api/v1/me/entries", headers=bearer(token)).get_json()
    assert [e["id"] for e in mine] == [body["id"]]


def test_not_eligible_lists_every_reason(client, world):
    comp = make_competition(world, organiser_org_id=world.orgs["east"].id)
    _, token = entrant(world, org="mill", birth="19600101", is_member=False, trade="电工", skill_level="junior")
    body = assert_error(sign_up(client, token, comp.id), 403, "not_eligible")
    assert {r["code"] for r in body["reasons"]} == {"not_member", "trade_mismatch", "skill_level_too_low", "too_old",
                                                     "org_not_eligible"}
    assert all(r["message"] for r in body["reasons"])
    _, young = entrant(world, birth="20150101", skill_level=None)
    codes = {r["code"] for r in assert_error(sign_up(client, young, comp.id), 403, "not_eligible")["reasons"]}
    assert codes == {"too_young", "skill_level_too_low"}
    bare = login(client, "newcomer")  # logged in, no profile yet
    codes = {r["code"] for r in assert_error(sign_up(client, bare, comp.id), 403, "not_eligible")["reasons"]}
    assert {"profile_incomplete", "not_member", "age_unknown", "org_not_eligible"} <= codes
    assert client.get(f"/api/v1/competitions/{comp.id}").get_json()["places_left"] == 3  # nothing was taken


def test_window_closed_already_entered_and_team_entry(client, world):
    now = datetime.now(timezone.utc)
    _, token = entrant(world)
    closed = make_competition(world, signup_start=now - timedelta(days=9), signup_end=now - timedelta(days=1))
    assert_error(sign_up(client, token, closed.id), 409, "window_closed")
    later = make_competition(world, signup_start=now + timedelta(days=1), signup_end=now + timedelta(days=9))
    assert_error(sign_up(client, token, later.id), 409, "window_closed")
    comp = make_competition(world)
    first = sign_up(client, token, comp.id).get_json()
    assert_error(sign_up(client, token, comp.id), 409, "already_entered", current_state="confirmed", entry_id=first["id"])
    team = make_competition(world, entry_mode="team", team_min=2, team_max=3)
    assert_error(sign_up(client, token, team.id), 409, "team_entry_required")
    draft = make_competition(world, status="draft")
    assert_error(sign_up(client, token, draft.id), 404, "not_found")
    assert_error(sign_up(client, "bogus", comp.id), 401, "invalid_token")


def test_sign_up_reads_the_entrant_with_the_competition_and_refuses_a_vanished_one(client, world):
    from server.models import Person

    person, token = entrant(world)
    gone, gone_token = entrant(world)
    comp = make_competition(world)
    db.delete(db.get(Person, gone.id))  # the token outlives its person
    db.commit()
    assert_error(sign_up(client, gone_token, comp.id), 401, "invalid_token")
    assert_error(sign_up(client, token, 2**31), 404, "not_found")
    body = sign_up(client, token, comp.id).get_json()
    assert body["status"] == "confirmed" and body["competition_name"] == comp.name
    assert entry_of(person, comp.id).org_id == world.orgs["factory"].id


@pytest.mark.parametrize("kind, other_org, other_ok", [("enterprise", "mill", True), ("district", "east", False)])
def test_org_quota(client, world, kind, other_org, other_ok):
    from server.services.orgs import create_org

    second_factory = create_org(name="东湖第二机械厂工会", kind="enterprise", parent=world.orgs["east"])
    db.commit()
    world.orgs["factory2"] = second_factory
    comp = make_competition(world, capacity=10, org_quota=1, org_quota_kind=kind)
    assert sign_up(client, entrant(world)[1], comp.id).get_json()["status"] == "confirmed"
    body = assert_error(sign_up(client, entrant(world)[1], comp.id), 409, "org_quota_full")
    assert "1" in body["message"]
    other = sign_up(client, entrant(world, org="factory2")[1], comp.id)
    assert (other.status_code == 201) is other_ok
    assert sign_up(client, entrant(world, org=other_org if other_ok else "mill")[1], comp.id).status_code == 201


def test_entries_needing_approval_hold_a_place(client, world):
    comp = make_competition(world, capacity=1, needs_approval=True)
    assert sign_up(client, entrant(world)[1], comp.id).get_json()["status"] == "pending_approval"
    assert sign_up(client, entrant(world)[1], comp.id).get_json()["status"] == "waitlisted"


def test_withdrawal_promotes_the_first_waitlisted_who_confirms(client, world, run_jobs):
    comp = make_competition(world, capacity=1, offer_hours=24)
    (a, ta), (b, tb), (c, tc) = entrant(world), entrant(world), entrant(world)
    for token in (ta, tb, tc):
        sign_up(client, token, comp.id)
    withdrawn = client.delete(f"/api/v1/competitions/{comp.id}/entries/mine", headers=bearer(ta))
    assert withdrawn.status_code == 200 and withdrawn.get_json()["status"] == "withdrawn"
    offered = _detail(client, comp.id, tb)["my_entry"]
    assert offered["status"] == "offered" and offered["offer_expires_at"]
    deadline = datetime.fromisoformat(offered["offer_expires_at"])
    assert timedelta(hours=23) < deadline - datetime.now(timezone.utc) <= timedelta(hours=24)
    assert _detail(client, comp.id, tc)["my_entry"]["position"] == 1
    run_jobs()
    assert inbox_titles(b) == ["候补递补通知"] and inbox_titles(a) == []
    # The waitlisted one cannot confirm; the offered one can, once.
    assert_error(client.post(f"/api/v1/competitions/{comp.id}/entries/mine/confirm", headers=bearer(tc)),
                 409, "invalid_state", current_state="waitlisted")
    confirmed = client.post(f"/api/v1/competitions/{comp.id}/entries/mine/confirm", headers=bearer(tb)).get_json()
    assert confirmed["status"] == "confirmed" and confirmed["candidate_number"]
    assert_error(client.post(f"/api/v1/competitions/{comp.id}/entries/mine/confirm", headers=bearer(tb)),
                 409, "invalid_state", current_state="confirmed")
    # Withdrawing twice is a 409 with the current state; entering again joins the end of the queue.
    assert_error(client.delete(f"/api/v1/competitions/{comp.id}/entries/mine", headers=bearer(ta)),
                 409, "invalid_state", current_state="withdrawn")
    again = sign_up(client, ta, comp.id).get_json()
    assert (again["status"], again["position"]) == ("waitlisted", 2)
    statuses = [e["status"] for e in client.get("/api/v1/me/entries", headers=bearer(ta)).get_json()]
    assert statuses == ["waitlisted", "withdrawn"]
    assert_error(client.delete(f"/api/v1/competitions/{comp.id}/entries/mine", headers=bearer(entrant(world)[1])),
                 404, "not_entered")


def test_an_unconfirmed_offer_expires_and_the_place_passes_on(client, world, run_jobs):
    comp = make_competition(world, capacity=1)
    (a, ta), (b, tb), (c, tc) = entrant(world), entrant(world), entrant(world)
    for token in (ta, tb, tc):
        sign_up(client, token, comp.id)
    client.delete(f"/api/v1/competitions/{comp.id}/entries/mine", headers=bearer(ta))
    entry = entry_of(b, comp.id)
    entry.offer_expires_at = datetime.now(timezone.utc) - timedelta(minutes=1)
    db.commit()
    # Before the sweep runs the deadline still holds.
    assert_error(client.post(f"/api/v1/competitions/{comp.id}/entries/mine/confirm", headers=bearer(tb)),
                 409, "offer_expired", current_state="offered")
    assert sweep_offers() == {"expired": [entry.id], "reminded": []}
    assert sweep_offers() == {"expired": [], "reminded": []}  # safe to run again
    assert entry_of(b, comp.id).status == "expired" and entry_of(c, comp.id).status == "offered"
    # An offer due soon gets a reminder, once.
    offer = entry_of(c, comp.id)
    offer.offer_expires_at = datetime.now(timezone.utc) + timedelta(hours=2)
    db.commit()
    assert sweep_offers()["reminded"] == [offer.id]
    sweep_offers()
    run_jobs()
    assert inbox_titles(b) == ["候补递补通知", "递补名额已失效"]
    assert inbox_titles(c) == ["候补递补通知", "递补确认即将截止"]


def test_list_puts_open_competitions_first_and_filters(client, world):
    now = datetime.now(timezone.utc)
    closed = make_competition(world, name="已截止", signup_start=now - timedelta(days=9), signup_end=now - timedelta(days=1))
    upcoming = make_competition(world, name="即将报名", signup_start=now + timedelta(days=1), signup_end=now + timedelta(days=5))
    open_ = make_competition(world, name="报名中")
    district = make_competition(world, name="数控", trade="数控车工", level="district")
    make_competition(world, name="草稿", status="draft")
    names = [c["name"] for c in client.get("/api/v1/competitions").get_json()]
    assert names == [open_.name, district.name, upcoming.name, closed.name]
    assert [c["name"] for c in client.get("/api/v1/competitions?trade=数控车工").get_json()] == ["数控"]
    assert [c["name"] for c in client.get("/api/v1/competitions?level=district").get_json()] == ["数控"]
    first = client.get("/api/v1/competitions").get_json()[0]
    assert first["signup_open"] and first["places_left"] == 3 and "venue_code" not in first
    assert_error(client.get("/api/v1/competitions?level=planet"), 422, "validation_error")
    assert_error(client.get("/api/v1/competitions/99999999999999999999"), 404, "not_found")
    assert_error(client.get(f"/api/v1/competitions/{district.id + 1}"), 404, "not_found")  # the draft


def test_check_in_with_the_venue_code(client, world):
    comp = make_competition(world, capacity=1)
    other = make_competition(world, name="另一场竞赛")
    (a, ta), (_, tb) = entrant(world), entrant(world)
    sign_up(client, ta, comp.id)
    sign_up(client, tb, comp.id)  # waitlisted
    url = f"/api/v1/competitions/{comp.id}/checkin"
    first = client.post(url, json={"code": f"checkin:{comp.id}:{comp.venue_code}"}, headers=bearer(ta))
    assert first.status_code == 200 and first.get_json()["first_scan"] is True
    again = client.post(url, json={"code": comp.venue_code}, headers=bearer(ta)).get_json()
    assert again["first_scan"] is False and again["entry"]["checked_in_at"] == first.get_json()["entry"]["checked_in_at"]
    assert entry_of(a, comp.id).checked_in_via == "miniprogram"
    assert_error(client.post(url, json={"code": other.venue_code}, headers=bearer(ta)), 409, "wrong_competition")
    assert_error(client.post(url, json={"code": "nonsense"}, headers=bearer(ta)), 400, "invalid_code")
    assert_error(client.post(url, json={"code": comp.venue_code}, headers=bearer(tb)), 409, "entry_not_confirmed",
                 current_state="waitlisted")
    _, stranger = entrant(world)
    assert_error(client.post(url, json={"code": comp.venue_code}, headers=bearer(stranger)), 409, "not_entered")
    assert_error(client.delete(f"/api/v1/competitions/{comp.id}/entries/mine", headers=bearer(ta)), 409,
                 "invalid_state", current_state="confirmed")
    assert_error(client.post(url, json={}, headers=bearer(ta)), 422, "validation_error")
    assert_error(client.post(url, json={"code": comp.venue_code, "x": 1}, headers=bearer(ta)), 422, "validation_error")
    assert_error(client.post(url, data="[]", content_type="application/json", headers=bearer(ta)), 422,
                 "validation_error")


def test_withdrawn_entrants_cannot_check_in(client, world):
    comp = make_competition(world)
    a, ta = entrant(world)
    sign_up(client, ta, comp.id)
    client.delete(f"/api/v1/competitions/{comp.id}/entries/mine", headers=bearer(ta))
    body = assert_error(client.post(f"/api/v1/competitions/{comp.id}/checkin", json={"code": comp.venue_code},
                                    headers=bearer(ta)), 409, "entry_not_confirmed", current_state="withdrawn")
    assert "退赛" in body["message"]


def test_openapi_documents_the_competition_paths(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in ("/api/v1/competitions", "/api/v1/competitions/{competition_id}/entries",
                 "/api/v1/competitions/{competition_id}/entries/mine", "/api/v1/me/entries",
                 "/api/v1/competitions/{competition_id}/checkin", "/api/admin/v1/competitions/{competition_id}/checkins"):
        assert path in paths


# -- teams -----------------------------------------------------------------------------------------

def _team_competition(world, **fields):
    return make_competition(world, entry_mode="team", team_min=2, team_max=3, **fields)


def _create_team(client, token, cid, name="焊花队"):
    return client.post(f"/api/v1/competitions/{cid}/teams", json={"name": name}, headers=bearer(token))


def _join(client, token, code):
    return client.post("/api/v1/teams/join", json={"code": code}, headers=bearer(token))


def _submit(client, token, team_id):
    return client.post(f"/api/v1/teams/{team_id}/submit", headers=bearer(token))


def _formed_team(client, world, cid, size):
    """A team of ``size`` made through the API: (team body, [(entrant, token)...]; the first is the captain)."""
    people = [entrant(world) for _ in range(size)]
    created = _create_team(client, people[0][1], cid)
    assert created.status_code == 201, created.get_json()
    team = created.get_json()
    for _, token in people[1:]:
        assert _join(client, token, team["join_code"]).status_code == 201
    return team, people


def test_a_captain_forms_a_team_with_a_join_code_and_members_are_checked(client, world):
    comp = _team_competition(world, capacity=10)
    (captain, tc), (member, tm) = entrant(world), entrant(world)
    team = _create_team(client, tc, comp.id).get_json()
    assert (team["status"], team["member_count"], team["captain_person_id"]) == ("forming", 1, captain.id)
    assert len(team["join_code"]) == 8 and team["members"][0]["status"] == "forming"
    joined = _join(client, tm, team["join_code"].lower() + " ")  # codes are forgiving about case and spaces
    assert joined.status_code == 201 and joined.get_json()["member_count"] == 2
    mine = client.get(f"/api/v1/competitions/{comp.id}/teams/mine", headers=bearer(tm)).get_json()
    assert mine["id"] == team["id"] and {m["person_id"] for m in mine["members"]} == {captain.id, member.id}
    # One active entry per person and competition: no second team, no joining twice.
    assert_error(_join(client, tm, team["join_code"]), 409, "already_entered", current_state="forming")
    assert_error(_create_team(client, tm, comp.id), 409, "already_entered")
    # Each member is checked against the rules.
    _, unfit = entrant(world, trade="电工", is_member=False)
    body = assert_error(_join(client, unfit, team["join_code"]), 403, "not_eligible")
    assert {r["code"] for r in body["reasons"]} == {"trade_mismatch", "not_member"}
    assert_error(_join(client, entrant(world)[1], "NOPE2345"), 404, "invalid_code")
    _, third = entrant(world)
    assert _join(client, third, team["join_code"]).status_code == 201
    assert_error(_join(client, entrant(world)[1], team["join_code"]), 409, "team_full", current_state="forming")
    # Individual endpoints refuse team competitions, and team endpoints individual ones.
    assert_error(sign_up(client, entrant(world)[1], comp.id), 409, "team_entry_required")
    solo = make_competition(world)
    assert_error(_create_team(client, entrant(world)[1], solo.id), 409, "individual_entry_required")
    assert_error(client.get(f"/api/v1/competitions/{solo.id}/teams/mine", headers=bearer(tc)), 404, "not_in_team")
    assert_error(client.delete(f"/api/v1/competitions/{comp.id}/entries/mine", headers=bearer(tm)), 409,
                 "team_entry", current_state="forming")
    assert_error(client.post(f"/api/v1/competitions/{comp.id}/teams", json={"name": ""}, headers=bearer(tc)),
                 422, "validation_error")
    assert_error(client.post("/api/v1/teams/join", json={}, headers=bearer(tc)), 422, "validation_error")


def test_members_leave_or_are_removed_only_while_forming(client, world):
    comp = _team_competition(world, capacity=10)
    team, [(captain, tc), (a, ta), (b, tb)] = _formed_team(client, world, comp.id, 3)
    url = f"/api/v1/teams/{team['id']}/members"
    assert_error(client.delete(f"{url}/{b.id}", headers=bearer(ta)), 403, "not_captain")
    assert_error(client.delete(f"{url}/{captain.id}", headers=bearer(tc)), 409, "captain_cannot_leave",
                 current_state="forming")
    left = client.delete(f"{url}/{a.id}", headers=bearer(ta))  # a member leaves
    assert left.status_code == 200 and left.get_json()["member_count"] == 2
    assert entry_of(a, comp.id).status == "withdrawn"
    assert_error(client.delete(f"{url}/{a.id}", headers=bearer(tc)), 404, "not_a_member")
    _, stranger = entrant(world)
    assert_error(client.delete(f"{url}/{b.id}", headers=bearer(stranger)), 404, "team_not_found")
    assert _join(client, ta, team["join_code"]).status_code == 201  # and may come back
    assert _submit(client, tc, team["id"]).get_json()["status"] == "submitted"
    assert_error(client.delete(f"{url}/{b.id}", headers=bearer(tc)), 409, "invalid_state", current_state="submitted")
    assert_error(_join(client, entrant(world)[1], team["join_code"]), 409, "invalid_state", current_state="submitted")
    assert_error(client.delete(f"/api/v1/teams/99999/members/{b.id}", headers=bearer(tc)), 404, "team_not_found")


def test_teams_take_their_places_as_a_unit_and_wait_as_one(client, world, run_jobs):
    comp = _team_competition(world, capacity=5)
    (first, p1), (second, p2), (third, p3) = (_formed_team(client, world, comp.id, n) for n in (3, 2, 2))
    assert_error(_submit(client, p1[1][1], first["id"]), 403, "not_captain")
    one = _submit(client, p1[0][1], first["id"]).get_json()
    assert (one["status"], one["entry_status"], one["position"]) == ("submitted", "confirmed", None)
    assert len({m["candidate_number"] for m in one["members"]}) == 3
    assert _submit(client, p2[0][1], second["id"]).get_json()["entry_status"] == "confirmed"  # 5 of 5 places
    three = _submit(client, p3[0][1], third["id"]).get_json()
    assert (three["entry_status"], three["position"]) == ("waitlisted", 1)
    assert_error(_submit(client, p3[0][1], third["id"]), 409, "invalid_state", current_state="submitted")
    detail = _detail(client, comp.id)
    assert (detail["places_left"], detail["waitlist_length"]) == (0, 1)
    # Withdrawing a team frees all its places: the waiting team is offered them at once, as a unit.
    withdrawn = client.delete(f"/api/v1/teams/{first['id']}", headers=bearer(p1[0][1]))
    assert withdrawn.status_code == 200
    assert {m["status"] for m in withdrawn.get_json()["members"]} == {"withdrawn"}
    assert withdrawn.get_json()["status"] == "withdrawn"
    offered = client.get(f"/api/v1/competitions/{comp.id}/teams/mine", headers=bearer(p3[1][1])).get_json()
    assert offered["entry_status"] == "offered" and offered["offer_expires_at"]
    assert _detail(client, comp.id)["places_left"] == 1
    # Any member accepts the offer for the whole team.
    confirmed = client.post(f"/api/v1/competitions/{comp.id}/entries/mine/confirm", headers=bearer(p3[1][1]))
    assert confirmed.status_code == 200 and confirmed.get_json()["team_id"] == third["id"]
    assert {entry_of(p, comp.id).status for p, _ in p3} == {"confirmed"}
    assert_error(client.delete(f"/api/v1/teams/{first['id']}", headers=bearer(p1[0][1])), 409, "invalid_state",
                 current_state="withdrawn")
    run_jobs()
    assert inbox_titles(p1[1][0]) == ["团队已提交报名", "已退出报名"] and inbox_titles(p3[0][0]) == ["候补递补通知", "团队已确认参赛"]
    assert inbox_titles(p2[1][0]) == ["团队已提交报名"]


def test_a_team_needs_its_size_and_a_head_team_is_not_overtaken(client, world):
    comp = _team_competition(world, capacity=4)
    solo, [(captain, tc)] = _formed_team(client, world, comp.id, 1)
    body = assert_error(_submit(client, tc, solo["id"]), 409, "team_size", current_state="forming")
    assert "2至3人" in body["message"]
    big, pb = _formed_team(client, world, comp.id, 3)
    small, ps = _formed_team(client, world, comp.id, 2)
    late, pl = _formed_team(client, world, comp.id, 2)
    assert _submit(client, pb[0][1], big["id"]).get_json()["entry_status"] == "confirmed"  # 1 place left
    assert _submit(client, ps[0][1], small["id"]).get_json()["position"] == 1
    assert _submit(client, pl[0][1], late["id"]).get_json()["position"] == 2
    # The captain of a forming team withdraws it: every member's entry ends.
    withdrawn = client.delete(f"/api/v1/teams/{solo['id']}", headers=bearer(tc)).get_json()
    assert withdrawn["status"] == "withdrawn" and entry_of(captain, comp.id).status == "withdrawn"
    assert (_detail(client, comp.id)["places_left"], _detail(client, comp.id)["waitlist_length"]) == (1, 2)


def _deadlock():
    import psycopg.errors
    from sqlalchemy.exc import OperationalError

    return OperationalError("UPDATE competition_places ...", {}, psycopg.errors.DeadlockDetected("deadlock detected"))


def test_a_sign_up_aborted_for_a_deadlock_is_run_again(client, world, monkeypatch):
    """PostgreSQL aborts one of two deadlocked transactions; the sign-up is rolled back and run again, once."""
    from sqlalchemy import func, select

    from server.models import CompetitionEntry
    from server.services import competitions

    person, token = entrant(world)
    comp = make_competition(world, capacity=1)
    real, calls = competitions._seat, []

    def deadlocked_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise _deadlock()
        return real(*args, **kwargs)

    monkeypatch.setattr(competitions, "_seat", deadlocked_once)
    body = sign_up(client, token, comp.id)
    assert body.status_code == 201 and body.get_json()["status"] == "confirmed" and len(calls) == 2
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(CompetitionEntry)) == 1  # the first attempt left nothing


def test_a_sign_up_deadlocked_every_time_is_given_up_after_three_attempts(client, world, monkeypatch):
    """Three deadlocks in a row are a bug, not a rush: answered 500 in the error shape (tests/test_app.py)."""
    from server.services import competitions

    _, token = entrant(world)
    comp = make_competition(world)
    calls = []

    def always(*args, **kwargs):
        calls.append(1)
        raise _deadlock()

    monkeypatch.setattr(competitions, "_seat", always)
    response = sign_up(client, token, comp.id)
    assert response.status_code == 500 and response.get_json()["code"] and len(calls) == 3


def test_ids_beyond_the_database_are_not_found(client, world):
    """Every competition path takes its ids through the bounded converter (found by schemathesis: an overflow)."""
    _, token = entrant(world)
    huge = 2**63
    for method, path in (("get", f"/api/v1/competitions/{huge}"), ("post", f"/api/v1/competitions/{huge}/entries"),
                         ("delete", f"/api/v1/competitions/{huge}/entries/mine"),
                         ("post", f"/api/v1/competitions/{huge}/entries/mine/confirm"),
                         ("post", f"/api/v1/competitions/{huge}/checkin"), ("get", f"/api/v1/competitions/{huge}/teams/mine"),
                         ("post", f"/api/v1/competitions/{huge}/teams"), ("delete", f"/api/v1/teams/{huge}"),
                         ("delete", f"/api/v1/teams/1/members/{huge}")):
        response = getattr(client, method)(path, headers=bearer(token), json={} if method == "post" else None)
        assert response.status_code == 404, (method, path, response.get_json())
        assert response.get_json()["code"] == "not_found"
