"""Organisers run competitions: create and edit, the entries and waiting list, approval, check-in."""

from datetime import datetime, timedelta, timezone

import pytest

from server.extensions import db
from server.security import mask_id_number
from server.services.staff import create_staff
from tests.api import PASSWORD, assert_error, bearer, body_text, make_world, staff_login
from tests.competition_helpers import entrant, entry_of, inbox_titles, make_competition, sign_up

BASE = "/api/admin/v1/competitions"


@pytest.fixture
def world():
    w = make_world()
    for username, org in (("city_organiser", "city"), ("east_organiser", "east")):
        w.staff[username] = create_staff(username, PASSWORD, w.orgs[org], "organiser")
    db.commit()
    return w


@pytest.fixture
def organiser(client, world):
    return bearer(staff_login(client, "city_organiser"))


def _body(**fields):
    now = datetime.now(timezone.utc)
    body = {"name": "东湖区数控车工技能竞赛", "trade": "数控车工", "level": "district",
            "signup_start": now.isoformat(), "signup_end": (now + timedelta(days=10)).isoformat(),
            "theory_at": (now + timedelta(days=20)).isoformat(), "capacity": 2, "org_quota": 2,
            "eligibility": {"trades": ["数控车工"], "min_skill_level": "junior", "min_age": 18, "max_age": 60},
            "status": "published"}
    body.update(fields)
    return body


def _action(client, headers, comp, entry_id, action, **body):
    return client.post(f"{BASE}/{comp.id}/entries/{entry_id}/{action}", json=body, headers=headers)


def test_create_and_edit_a_competition_within_scope(client, world, organiser):
    east = bearer(staff_login(client, "east_organiser"))
    created = client.post(BASE, json=_body(organiser_org_id=world.orgs["east"].id), headers=east)
    assert created.status_code == 201, created.get_json()
    comp = created.get_json()
    assert comp["organiser_name"] == "东湖区总工会" and comp["places_left"] == 2 and comp["venue_code"]
    assert comp["checkin_scene"] == f"checkin:{comp['id']}" and comp["eligibility"]["trades"] == ["数控车工"]
    # The city sees it; a west district reviewer does not; the worker API shows it without the venue code.
    assert [c["id"] for c in client.get(BASE, headers=organiser).get_json()] == [comp["id"]]
    west = bearer(staff_login(client, "west_reviewer"))
    assert client.get(BASE, headers=west).get_json() == []
    assert_error(client.get(f"{BASE}/{comp['id']}", headers=west), 404, "not_found")
    assert "venue_code" not in client.get(f"/api/v1/competitions/{comp['id']}").get_json()
    # East may not create for the city; edits are validated on the merged result.
    body = assert_error(client.post(BASE, json=_body(organiser_org_id=world.orgs["city"].id), headers=east),
                        422, "validation_error")
    assert "organiser_org_id" in body["errors"]
    patched = client.patch(f"{BASE}/{comp['id']}", json={"capacity": 5, "venue": "高新区精工路18号"}, headers=east)
    assert patched.status_code == 200 and patched.get_json()["capacity"] == 5
    body = assert_error(client.patch(f"{BASE}/{comp['id']}", json={"signup_end": "2000-01-01T00:00:00+08:00"},
                                     headers=east), 422, "validation_error")
    assert set(body["errors"]) == {"signup_end"}
    assert_error(client.patch(f"{BASE}/{comp['id']}", json={"status": "draft"}, headers=east), 409, "invalid_state",
                 current_state="published")
    assert_error(client.patch(f"{BASE}/{comp['id']}", json={"capacity": 5}, headers=west), 404, "not_found")


def test_create_validation_and_roles(client, world, organiser):
    body = assert_error(client.post(BASE, json={}, headers=organiser), 422, "validation_error")
    assert {"name", "trade", "level", "signup_start", "signup_end", "capacity"} <= set(body["errors"])
    bad = _body(capacity=0, level="planet", signup_start="yesterday", eligibility={"min_age": 50, "max_age": 20},
                team_min="x", extra=1)
    body = assert_error(client.post(BASE, json=bad, headers=organiser), 422, "validation_error")
    assert {"capacity", "level", "signup_start", "eligibility", "team_min", "extra"} <= set(body["errors"])
    naive = _body(signup_start="2026-03-01T09:00:00")
    assert_error(client.post(BASE, json=naive, headers=organiser), 422, "validation_error")
    huge = _body(capacity=10**30)
    assert_error(client.post(BASE, json=huge, headers=organiser), 422, "validation_error")
    body = assert_error(client.post(BASE, json=_body(entry_mode="team", org_quota=9, theory_weight=50), headers=organiser),
                        422, "validation_error")
    assert set(body["errors"]) == {"team_max", "org_quota", "practical_weight"}
    viewer = bearer(staff_login(client, "city_viewer"))
    assert_error(client.post(BASE, json=_body(), headers=viewer), 403, "role_forbidden")
    assert_error(client.post(BASE, json=_body()), 401, "unauthorized")
    assert_error(client.get(f"{BASE}/99999999999999", headers=organiser), 404, "not_found")


def test_entries_and_waiting_list_with_masked_id_numbers(client, world, organiser):
    comp = make_competition(world, capacity=1)
    people = [entrant(world) for _ in range(3)]
    for _, token in people:
        sign_up(client, token, comp.id)
    response = client.get(f"{BASE}/{comp.id}/entries", headers=organiser)
    entries = response.get_json()
    assert [e["status"] for e in entries] == ["confirmed", "waitlisted", "waitlisted"]
    assert entries[0]["id_number_masked"] == mask_id_number(people[0][0].plain_id_number)
    assert entries[0]["phone_masked"] != "13800138000" and entries[0]["admission_code"] is None
    text = body_text(response)
    assert all(p.plain_id_number not in text for p, _ in people) and "13800138000" not in text
    waiting = client.get(f"{BASE}/{comp.id}/entries?status=waitlisted", headers=organiser).get_json()
    assert [(e["person_id"], e["position"]) for e in waiting] == [(people[1][0].id, 1), (people[2][0].id, 2)]
    assert_error(client.get(f"{BASE}/{comp.id}/entries?status=maybe", headers=organiser), 422, "validation_error")
    detail = client.get(f"{BASE}/{comp.id}", headers=organiser).get_json()
    assert (detail["places_left"], detail["waitlist_length"]) == (0, 2)


def test_promote_by_hand_after_raising_the_capacity(client, world, organiser, run_jobs):
    comp = make_competition(world, capacity=1)
    people = [entrant(world) for _ in range(3)]
    for _, token in people:
        sign_up(client, token, comp.id)
    second = entry_of(people[2][0], comp.id)
    assert_error(_action(client, organiser, comp, second.id, "promote"), 409, "no_place_free", current_state="waitlisted")
    assert_error(client.patch(f"{BASE}/{comp.id}", json={"capacity": 0}, headers=organiser), 422, "validation_error")
    client.patch(f"{BASE}/{comp.id}", json={"capacity": 2}, headers=organiser)
    assert entry_of(people[1][0], comp.id).status == "waitlisted"  # a capacity raise does not promote by itself
    promoted = _action(client, organiser, comp, second.id, "promote", reason="主办方增补")
    assert promoted.status_code == 200 and promoted.get_json()["status"] == "offered"
    assert_error(_action(client, organiser, comp, second.id, "promote"), 409, "invalid_state", current_state="offered")
    first = entry_of(people[0][0], comp.id)
    assert_error(_action(client, organiser, comp, first.id, "approve"), 409, "invalid_state", current_state="confirmed")
    run_jobs()
    assert inbox_titles(people[2][0]) == ["候补递补通知"]
    assert_error(_action(client, organiser, comp, 99999, "promote"), 404, "not_found")
    reviewer = bearer(staff_login(client, "city_reviewer"))
    assert_error(_action(client, reviewer, comp, second.id, "remove"), 403, "role_forbidden")
    assert client.post(f"{BASE}/{comp.id}/entries/{second.id}/explode", json={}, headers=organiser).status_code == 404


def test_approval_rejection_and_removal_pass_places_on(client, world, organiser, run_jobs):
    comp = make_competition(world, capacity=2, needs_approval=True)
    people = [entrant(world) for _ in range(4)]
    for _, token in people:
        sign_up(client, token, comp.id)
    a, b, c, d = (entry_of(p, comp.id) for p, _ in people)
    assert [a.status, b.status, c.status] == ["pending_approval", "pending_approval", "waitlisted"]
    reviewer = bearer(staff_login(client, "city_reviewer"))
    approved = _action(client, reviewer, comp, a.id, "approve").get_json()
    assert approved["status"] == "confirmed" and approved["candidate_number"]
    rejected = _action(client, reviewer, comp, b.id, "reject", reason="工种不符").get_json()
    assert (rejected["status"], rejected["reason"]) == ("rejected", "工种不符")
    assert entry_of(people[2][0], comp.id).status == "offered"
    removed = _action(client, organiser, comp, a.id, "remove", reason="冒名顶替").get_json()
    assert removed["status"] == "removed" and entry_of(people[3][0], comp.id).status == "offered"
    assert_error(_action(client, organiser, comp, a.id, "remove"), 409, "invalid_state", current_state="removed")
    assert_error(_action(client, reviewer, comp, b.id, "reject"), 409, "invalid_state", current_state="rejected")
    run_jobs()
    assert inbox_titles(people[0][0]) == ["报名审核通过", "参赛资格已取消"]
    assert inbox_titles(people[1][0]) == ["报名未通过审核"]
    assert inbox_titles(people[2][0]) == ["候补递补通知"]


def test_staff_scan_admission_codes_and_see_arrivals(client, world, organiser):
    comp = make_competition(world, capacity=2)
    other = make_competition(world, name="另一场竞赛")
    (a, ta), (b, tb), (c, tc) = entrant(world), entrant(world), entrant(world)
    code_a = sign_up(client, ta, comp.id).get_json()["admission_code"]
    code_b = sign_up(client, tb, comp.id).get_json()["admission_code"]
    code_other = sign_up(client, tc, other.id).get_json()["admission_code"]
    url = f"{BASE}/{comp.id}/checkins"
    first = client.post(url, json={"code": code_a}, headers=organiser).get_json()
    assert first["first_scan"] is True and first["entry"]["checked_in_via"] == "staff"
    again = client.post(url, json={"code": code_a}, headers=organiser).get_json()
    assert again["first_scan"] is False and again["entry"]["checked_in_at"] == first["entry"]["checked_in_at"]
    assert_error(client.post(url, json={"code": code_other}, headers=organiser), 409, "wrong_competition",
                 current_state="confirmed")
    assert_error(client.post(url, json={"code": "UHE:forged"}, headers=organiser), 400, "invalid_code")
    client.delete(f"/api/v1/competitions/{comp.id}/entries/mine", headers=bearer(tb))
    assert_error(client.post(url, json={"code": code_b}, headers=organiser), 409, "entry_not_confirmed",
                 current_state="withdrawn")
    arrivals = client.get(url, headers=organiser).get_json()
    assert (arrivals["expected"], arrivals["arrived"]) == (1, 1)
    assert [e["person_id"] for e in arrivals["entries"]] == [a.id]
    assert "*" in arrivals["entries"][0]["id_number_masked"]
    viewer = bearer(staff_login(client, "city_viewer"))
    assert_error(client.post(url, json={"code": code_a}, headers=viewer), 403, "role_forbidden")
    assert client.get(url, headers=viewer).status_code == 200


def test_officers_sign_up_workers_of_their_own_union_only(client, world, run_jobs):
    comp = make_competition(world, capacity=1)
    mine, theirs = entrant(world, org="factory")[0], entrant(world, org="mill")[0]
    officer = bearer(staff_login(client, "factory_officer"))
    url = f"{BASE}/{comp.id}/entries"
    entered = client.post(url, json={"person_id": mine.id}, headers=officer)
    assert entered.status_code == 201, entered.get_json()
    body = entered.get_json()
    assert body["status"] == "confirmed" and body["entered_by_staff_id"] == world.staff["factory_officer"].id
    assert "*" in body["id_number_masked"]
    assert_error(client.post(url, json={"person_id": mine.id}, headers=officer), 409, "already_entered",
                 current_state="confirmed")
    assert_error(client.post(url, json={"person_id": theirs.id}, headers=officer), 404, "not_found")
    assert_error(client.post(url, json={"person_id": 10**12}, headers=officer), 422, "validation_error")
    reviewer = bearer(staff_login(client, "city_reviewer"))
    assert_error(client.post(url, json={"person_id": theirs.id}, headers=reviewer), 403, "role_forbidden")
    run_jobs()
    assert inbox_titles(mine) == ["已为您报名"]
