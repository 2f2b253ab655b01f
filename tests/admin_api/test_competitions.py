"""Organisers run competitions: create and edit, the entries and waiting list, approval, check-in."""

from datetime import datetime, timedelta, timezone

import pytest

from sqlalchemy import select

from server.extensions import db
from server.models import Competition
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


def test_counters_stay_exact_through_random_sequences_of_every_path(world):
    """Sign-ups, withdrawals, removals, rejections, approvals, promotions, offers confirmed or expiring, capacity
    edits and the team paths, at random; after every step the counters equal a recount of the entries."""
    import random
    from collections import Counter

    from server.errors import ServiceError
    from server.models import CompetitionEntry, Person
    from server.models.competitions import CompetitionTeam
    from server.services import competitions as svc
    from tests.competition_helpers import assert_counters_exact

    rng = random.Random(20261121)
    admin = world.staff["city_admin"]
    solo = make_competition(world, capacity=4, org_quota=3, offer_hours=1)
    approval = make_competition(world, capacity=3, needs_approval=True)
    teams = make_competition(world, capacity=7, entry_mode="team", team_min=2, team_max=3, org_quota=5)
    ids = [solo.id, approval.id, teams.id]
    people = [entrant(world, org=rng.choice(["factory", "mill"]))[0].id for _ in range(30)]

    def entries(cid, *statuses):
        return list(db.scalars(select(CompetitionEntry).where(CompetitionEntry.competition_id == cid,
                                                              CompetitionEntry.status.in_(statuses))
                               .order_by(CompetitionEntry.id)))

    def pick(items):
        if not items:
            raise LookupError
        return rng.choice(items)

    def person():
        return db.get(Person, rng.choice(people))

    def forming_team():
        return pick(list(db.scalars(select(CompetitionTeam).where(CompetitionTeam.status == "forming")
                                    .order_by(CompetitionTeam.id))))

    def captain(team):
        return db.get(Person, team.captain_person_id)

    def expire(cid):
        entry = pick(entries(cid, "offered"))
        entry.offer_expires_at = datetime.now(timezone.utc) - timedelta(minutes=1)
        db.flush()
        assert svc.expire_offers()

    def staff(action, *statuses):
        def run(cid):
            comp = db.get(Competition, cid)
            svc.staff_action(admin, comp, pick(entries(cid, *statuses)).id, action)
        return run

    individual_ops = {
        "sign_up": lambda cid: svc.sign_up(person(), cid),
        "withdraw": lambda cid: svc.withdraw(person(), cid),
        "confirm": lambda cid: svc.confirm_offer(pick(entries(cid, "offered")).person, cid),
        "capacity": lambda cid: svc.save_competition(admin, {"capacity": rng.randint(1, 8)}, db.get(Competition, cid)),
    }
    shared_ops = {
        "remove": staff("remove", "confirmed", "waitlisted", "offered", "pending_approval", "forming"),
        "reject": staff("reject", "pending_approval"), "approve": staff("approve", "pending_approval"),
        "promote": staff("promote", "waitlisted"), "expire": expire,
        "confirm": lambda cid: svc.confirm_offer(pick(entries(cid, "offered")).person, cid),
    }
    team_ops = {
        "create_team": lambda cid: svc.create_team(cid, "队", person=person()),
        "join": lambda cid: svc.join_team(person(), forming_team().join_code),
        "leave": lambda cid: svc.remove_member(*(lambda e: (e.person, e.team_id, e.person_id))(
            pick([e for e in entries(cid, "forming") if e.person_id != e.team.captain_person_id]))),
        "submit": lambda cid: svc.submit_team(captain(team := forming_team()), team.id),
        "withdraw_team": lambda cid: svc.withdraw_team(
            captain(team := pick(list(db.scalars(select(CompetitionTeam).where(CompetitionTeam.status != "withdrawn")
                                                 .order_by(CompetitionTeam.id))))),
            team.id),
        "capacity": lambda cid: svc.save_competition(admin, {"capacity": rng.randint(2, 12)}, db.get(Competition, cid)),
    }
    done, refused = Counter(), Counter()
    for _ in range(900):
        cid = rng.choice(ids)
        ops = {**shared_ops, **(team_ops if cid == teams.id else individual_ops)}
        name = rng.choice(sorted(ops) + ["sign_up", "sign_up", "join", "join", "join", "submit", "expire"] * 2)
        name = name if name in ops else "remove" if cid == teams.id and name == "sign_up" else name
        if name not in ops:
            continue
        try:
            ops[name](cid)
            db.commit()
            done[name] += 1
        except (ServiceError, LookupError) as exc:
            db.rollback()
            refused[name, getattr(exc, "code", "none")] += 1
        for competition_id in ids:
            assert_counters_exact(competition_id)
    assert all(done[name] for name in {*shared_ops, *team_ops, *individual_ops}), (done, refused)


def test_officers_form_teams_of_their_own_workers_and_staff_act_on_whole_teams(client, world, organiser, run_jobs):
    comp = make_competition(world, capacity=4, entry_mode="team", team_min=2, team_max=3, needs_approval=True)
    officer = bearer(staff_login(client, "factory_officer"))
    created = client.post(f"{BASE}/{comp.id}/teams", json={"name": "东湖机械厂代表队"}, headers=officer)
    assert created.status_code == 201, created.get_json()
    team = created.get_json()
    assert (team["captain_person_id"], team["member_count"], team["org_id"]) == (None, 0, world.orgs["factory"].id)
    members_url = f"/api/admin/v1/teams/{team['id']}/members"
    ours = [entrant(world, org="factory")[0] for _ in range(3)]
    theirs = entrant(world, org="mill")[0]
    for person in ours[:2]:
        assert client.post(members_url, json={"person_id": person.id}, headers=officer).status_code == 201
    assert_error(client.post(members_url, json={"person_id": theirs.id}, headers=officer), 404, "not_found")
    unfit = entrant(world, org="factory", skill_level="junior")[0]
    assert_error(client.post(members_url, json={"person_id": unfit.id}, headers=officer), 403, "not_eligible")
    assert_error(client.post(members_url, json={"person_id": ours[0].id}, headers=officer), 409, "already_entered")
    mill_officer = create_staff("mill_officer", PASSWORD, world.orgs["mill"], "officer")
    db.commit()
    other = bearer(staff_login(client, mill_officer.username))
    assert_error(client.post(members_url, json={"person_id": theirs.id}, headers=other), 404, "team_not_found")
    assert client.get(f"{BASE}/{comp.id}/teams", headers=other).get_json() == []
    assert_error(client.post(f"/api/admin/v1/teams/{team['id']}/submit", headers=organiser), 403, "role_forbidden")
    # A member added and removed while forming; then the team is submitted as a unit and waits for approval.
    assert client.post(members_url, json={"person_id": ours[2].id}, headers=officer).status_code == 201
    removed = client.delete(f"{members_url}/{ours[2].id}", headers=officer)
    assert removed.status_code == 200 and removed.get_json()["member_count"] == 2
    submitted = client.post(f"/api/admin/v1/teams/{team['id']}/submit", headers=officer).get_json()
    assert (submitted["status"], submitted["entry_status"]) == ("submitted", "pending_approval")
    assert_error(client.delete(f"{members_url}/{ours[0].id}", headers=officer), 409, "invalid_state",
                 current_state="submitted")
    listed = client.get(f"{BASE}/{comp.id}/teams", headers=organiser).get_json()
    assert [t["id"] for t in listed] == [team["id"]]
    # Approving one member's entry approves the team; removing one removes the team and frees its places.
    entry = entry_of(ours[0], comp.id)
    approved = _action(client, organiser, comp, entry.id, "approve").get_json()
    assert approved["status"] == "confirmed" and entry_of(ours[1], comp.id).status == "confirmed"
    _action(client, organiser, comp, entry.id, "remove", reason="资格不符")
    assert {entry_of(p, comp.id).status for p in ours[:2]} == {"removed"}
    detail = client.get(f"{BASE}/{comp.id}", headers=organiser).get_json()
    assert detail["places_left"] == 4
    assert_error(client.delete(f"/api/admin/v1/teams/{team['id']}", headers=officer), 409, "invalid_state",
                 current_state="withdrawn")
    run_jobs()
    assert inbox_titles(ours[1]) == ["已为您报名", "团队已提交报名", "报名审核通过", "参赛资格已取消"]


def test_officers_withdraw_their_team(client, world):
    comp = make_competition(world, capacity=4, entry_mode="team", team_min=2, team_max=3)
    officer = bearer(staff_login(client, "factory_officer"))
    team = client.post(f"{BASE}/{comp.id}/teams", json={"name": "一队"}, headers=officer).get_json()
    for person in [entrant(world, org="factory")[0] for _ in range(2)]:
        client.post(f"/api/admin/v1/teams/{team['id']}/members", json={"person_id": person.id}, headers=officer)
    assert client.post(f"/api/admin/v1/teams/{team['id']}/submit", headers=officer).get_json()["entry_status"] == "confirmed"
    assert client.get(f"{BASE}/{comp.id}", headers=bearer(staff_login(client, "city_organiser"))).get_json()["places_left"] == 2
    withdrawn = client.delete(f"/api/admin/v1/teams/{team['id']}", headers=officer).get_json()
    assert withdrawn["status"] == "withdrawn" and withdrawn["entry_status"] == "withdrawn"
    assert_error(client.post(f"{BASE}/{comp.id}/teams", json={"name": "x" * 65}, headers=officer), 422,
                 "validation_error")
    assert_error(client.post("/api/admin/v1/teams/99999/submit", headers=officer), 404, "team_not_found")
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in ("/api/v1/competitions/{competition_id}/teams", "/api/v1/competitions/{competition_id}/teams/mine",
                 "/api/v1/teams/join", "/api/v1/teams/{team_id}/submit", "/api/v1/teams/{team_id}/members/{person_id}",
                 "/api/admin/v1/competitions/{competition_id}/teams", "/api/admin/v1/teams/{team_id}/members",
                 "/api/admin/v1/teams/{team_id}/submit", "/api/admin/v1/teams/{team_id}"):
        assert path in paths
