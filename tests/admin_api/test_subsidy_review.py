"""Staff review: scoping by organisation, roles, review levels, limits, bulk approval, programmes, audit."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import AuditEntry, SubsidyProgram
from tests.api import (
    assert_error,
    bearer,
    decide,
    make_world,
    pay,
    ready_application,
    skill_draft,
    staff_login,
    worker,
)


@pytest.fixture
def world():
    return make_world()


def test_staff_see_only_their_subtree(client, world):
    east_token, _ = worker(client, world, "alice", org="factory")
    west_token, number = worker(client, world, "bob", org="mill")
    east = ready_application(client, east_token, world.program.id, number="E-1", invoice="E-1")
    west = ready_application(client, west_token, world.program.id, number="W-1", invoice="W-1")
    city = staff_login(client, "city_reviewer")
    listed = client.get("/api/admin/v1/subsidy/applications", headers=bearer(city))
    assert {a["id"] for a in listed.get_json()} == {east["id"], west["id"]}
    assert number not in listed.get_data(as_text=True)
    applicant = listed.get_json()[1]["applicant"]
    assert applicant["phone_masked"] == "138****8000" and applicant["id_number_masked"].count("*") == 11
    officer = staff_login(client, "factory_officer")
    assert [a["id"] for a in client.get("/api/admin/v1/subsidy/applications", headers=bearer(officer)).get_json()] \
        == [east["id"]]
    west_reviewer = staff_login(client, "west_reviewer")
    assert_error(client.get(f"/api/admin/v1/subsidy/applications/{east['id']}", headers=bearer(west_reviewer)),
                 404, "not_found")
    assert_error(decide(client, west_reviewer, east["id"], decision="approve"), 404, "not_found")
    filtered = client.get(f"/api/admin/v1/subsidy/applications?org_id={world.orgs['west'].id}&status=submitted",
                          headers=bearer(city)).get_json()
    assert [a["id"] for a in filtered] == [west["id"]]
    assert_error(client.get("/api/admin/v1/subsidy/applications?status=lost", headers=bearer(city)),
                 422, "validation_error")


def test_roles_and_review_levels(client, world):
    token, _ = worker(client, world, "carol")
    app = ready_application(client, token, world.program.id)
    assert_error(decide(client, staff_login(client, "city_viewer"), app["id"], decision="approve"),
                 403, "role_forbidden")
    assert_error(decide(client, staff_login(client, "city_finance"), app["id"], decision="approve"),
                 403, "role_forbidden")
    officer = staff_login(client, "factory_officer")
    assert decide(client, officer, app["id"], decision="approve").get_json()["status"] == "under_review"
    # The enterprise union cannot take the city's final decision, nor pay.
    assert_error(decide(client, officer, app["id"], decision="approve"), 403, "review_level_forbidden")
    assert_error(decide(client, officer, app["id"], decision="reject", reason="x"), 403, "review_level_forbidden")
    reviewer = staff_login(client, "city_reviewer")
    assert_error(pay(client, reviewer, app["id"], result="paid", reference="R"), 403, "role_forbidden")
    assert_error(decide(client, reviewer, app["id"], decision="approve", amount_fen=200_001), 422, "amount_invalid")
    body = assert_error(decide(client, reviewer, app["id"], decision="maybe"), 422, "validation_error")
    assert "decision" in body["errors"]
    past = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
    assert_error(decide(client, reviewer, app["id"], decision="return", reason="r", return_deadline=past),
                 422, "validation_error")
    # Returned at the city level, the resubmission goes straight back to the city.
    decide(client, reviewer, app["id"], decision="return", reason="请补充")
    again = client.post(f"/api/v1/subsidy/applications/{app['id']}/submit", headers=bearer(token)).get_json()
    assert again["status"] == "under_review" and again["review_level"] == 2
    assert decide(client, reviewer, app["id"], decision="approve").get_json()["approved_fen"] == 200_000
    entries = db.scalars(select(AuditEntry).where(AuditEntry.actor_type == "staff").order_by(AuditEntry.id)).all()
    assert [(e.action, e.from_state, e.to_state) for e in entries] == [
        ("subsidy_application.approve_first_level", "submitted", "under_review"),
        ("subsidy_application.return", "under_review", "returned"),
        ("subsidy_application.approve", "under_review", "approved"),
    ]
    assert entries[1].reason == "请补充" and entries[2].details == {"amount_fen": 200_000}
    assert entries[0].actor_id == world.staff["factory_officer"].id and entries[0].org_id == world.orgs["factory"].id


def test_per_person_cap_across_applications(client, world):
    world.program.review_levels = 1
    db.commit()
    token, _ = worker(client, world, "dave")
    first = ready_application(client, token, world.program.id, number="A", invoice="A", amount=200_000)
    second = ready_application(client, token, world.program.id, number="B", invoice="B", amount=100_000)
    reviewer = staff_login(client, "city_reviewer")
    assert decide(client, reviewer, first["id"], decision="approve").status_code == 200
    body = assert_error(decide(client, reviewer, second["id"], decision="approve"), 409, "cap_exceeded")
    assert "2500.00元" in body["message"]
    assert decide(client, reviewer, second["id"], decision="approve", amount_fen=50_000).status_code == 200
    program = client.get(f"/api/admin/v1/subsidy/programs/{world.program.id}", headers=bearer(reviewer)).get_json()
    assert program["committed_fen"] == 250_000 and program["approved_people"] == 1  # one person, one place
    # Nothing is left for a third application: refused already at submission.
    third = skill_draft(client, token, world.program.id, number="C", invoice="C", amount=1)
    refused = client.post(f"/api/v1/subsidy/applications/{third['id']}/submit", headers=bearer(token)).get_json()
    assert "exceeds_cap" in {p["code"] for p in refused["problems"]}


def test_places_and_budget(client, world):
    world.program.review_levels, world.program.max_people, world.program.budget_fen = 1, 2, 150_000
    db.commit()
    apps = []
    for name in ("erin", "frank", "gina"):
        token, _ = worker(client, world, name)
        apps.append(ready_application(client, token, world.program.id, number=name, invoice=name, amount=100_000))
    reviewer = staff_login(client, "city_reviewer")
    assert decide(client, reviewer, apps[0]["id"], decision="approve").status_code == 200
    body = assert_error(decide(client, reviewer, apps[1]["id"], decision="approve"), 409, "budget_exhausted")
    assert "500.00元" in body["message"]
    assert decide(client, reviewer, apps[1]["id"], decision="approve", amount_fen=50_000).status_code == 200
    world.program.budget_fen = 1_000_000
    db.commit()
    assert_error(decide(client, reviewer, apps[2]["id"], decision="approve"), 409, "places_exhausted")
    db.expire_all()
    program = db.get(SubsidyProgram, world.program.id)
    assert (program.committed_fen, program.approved_people) == (150_000, 2)


def test_bulk_approval_reports_each_refusal(client, world):
    world.program.review_levels, world.program.budget_fen = 1, 300_000
    db.commit()
    ids = []
    for name in ("henry", "irene", "jack"):
        token, _ = worker(client, world, name)
        ids.append(ready_application(client, token, world.program.id, number=name, invoice=name,
                                     amount=150_000)["id"])
    west_token, _ = worker(client, world, "kate", org="mill")
    west_id = ready_application(client, west_token, world.program.id, number="k", invoice="k", amount=1000)["id"]
    officer = staff_login(client, "factory_officer")
    reviewer = staff_login(client, "city_reviewer")
    decide(client, reviewer, ids[0], decision="reject", reason="不符合条件")
    body = {"ids": ids + [ids[1], 987654], "reason": "批量审核"}
    result = client.post("/api/admin/v1/subsidy/applications/bulk-approve", json=body, headers=bearer(reviewer))
    report = result.get_json()
    assert result.status_code == 200
    assert [a["id"] for a in report["approved"]] == ids[1:]
    refused = {r["id"]: r for r in report["refused"]}
    assert refused[ids[0]]["code"] == "invalid_state" and refused[ids[0]]["current_state"] == "rejected"
    assert refused[987654]["code"] == "not_found"
    again = client.post("/api/admin/v1/subsidy/applications/bulk-approve", json={"ids": [west_id]},
                        headers=bearer(reviewer)).get_json()
    assert again["refused"][0]["code"] == "budget_exhausted"
    # The enterprise officer cannot even see the other district's application.
    other = client.post("/api/admin/v1/subsidy/applications/bulk-approve", json={"ids": [west_id]},
                        headers=bearer(officer)).get_json()
    assert other["refused"][0]["code"] == "not_found"
    db.expire_all()
    assert db.get(SubsidyProgram, world.program.id).committed_fen == 300_000
    assert_error(client.post("/api/admin/v1/subsidy/applications/bulk-approve", json={"ids": []},
                             headers=bearer(reviewer)), 422, "validation_error")


def test_programmes_are_created_and_edited_by_admins(client, world):
    admin = staff_login(client, "city_admin")
    now = datetime.now(timezone.utc)
    body = {"name": "新就业形态劳动者技能提升补助", "kinds": ["skill"], "window_start": now.isoformat(),
            "window_end": (now + timedelta(days=90)).isoformat(), "per_person_cap_fen": 100_000, "max_people": 50,
            "budget_fen": 5_000_000, "status": "open", "required_documents": {"skill": ["certificate"]},
            "eligibility": {"worker_categories": ["new_form"]}}
    created = client.post("/api/admin/v1/subsidy/programs", json=body, headers=bearer(admin))
    program = created.get_json()
    assert created.status_code == 201 and program["org_id"] == world.orgs["city"].id
    assert program["eligibility"]["member_required"] is True and program["places_left"] == 50
    assert len(client.get("/api/v1/subsidy/programs").get_json()) == 2
    url = f"/api/admin/v1/subsidy/programs/{program['id']}"
    patched = client.patch(url, json={"max_people": 60, "status": "closed"}, headers=bearer(admin)).get_json()
    assert patched["max_people"] == 60 and patched["status"] == "closed" and patched["name"] == body["name"]
    assert_error(client.patch(url, json={"org_id": 1}, headers=bearer(admin)), 422, "validation_error")
    assert_error(client.patch(url, json={"window_end": (now - timedelta(days=1)).isoformat()}, headers=bearer(admin)),
                 422, "validation_error")
    assert_error(client.patch(url, json={"required_documents": {"degree": ["x"]}}, headers=bearer(admin)),
                 422, "validation_error")
    assert_error(client.post("/api/admin/v1/subsidy/programs", json={**body, "window_start": "2026-01-01T00:00:00"},
                             headers=bearer(admin)), 422, "validation_error")
    assert_error(client.patch(url, json={"max_people": 1}, headers=bearer(staff_login(client, "city_reviewer"))),
                 403, "role_forbidden")
    # Budget never below what is approved.
    token, _ = worker(client, world, "liam")
    app = ready_application(client, token, world.program.id)
    reviewer = staff_login(client, "city_reviewer")
    decide(client, reviewer, app["id"], decision="approve")
    decide(client, reviewer, app["id"], decision="approve")
    main_url = f"/api/admin/v1/subsidy/programs/{world.program.id}"
    body = assert_error(client.patch(main_url, json={"budget_fen": 100}, headers=bearer(admin)), 422,
                        "validation_error")
    assert "budget_fen" in body["errors"]
    saved = db.scalars(select(AuditEntry).where(AuditEntry.action == "subsidy_program.saved")).all()
    assert len(saved) == 2 and saved[1].from_state == "open" and saved[1].to_state == "closed"
