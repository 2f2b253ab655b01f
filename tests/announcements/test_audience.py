"""Writing announcements: validation, empty audiences, staff scope, and who each audience reaches."""

from datetime import datetime, timedelta, timezone

import pytest

from server.extensions import db
from server.models import AnnouncementRead, CompetitionEntry, SubsidyApplication
from tests.announcements import ADMIN, bearer, create, created, people, staff_login
from tests.api import assert_error
from tests.competition_helpers import make_competition


def reach(client, token, audience) -> int:
    a = created(client, token, audience)
    return client.get(f"{ADMIN}/{a['id']}/preview", headers=bearer(token)).get_json()["recipients"]


@pytest.mark.parametrize("body, field", [
    ({"title": "", "body": "x"}, "title"),
    ({"title": "标" * 65, "body": "x"}, "title"),
    ({"title": "两行\n标题", "body": "x"}, "title"),
    ({"title": "t", "body": ""}, "body"),
    ({"title": "t", "body": "x", "link": "https://evil.example/x"}, "link"),
    ({"title": "t", "body": "x", "colour": "red"}, "colour"),
])
def test_fields_are_validated_in_chinese(client, world, body, field):
    token = staff_login(client, "city_admin")
    response = client.post(ADMIN, json={"audience": {"all": True}, **body}, headers=bearer(token))
    assert field in assert_error(response, 422, "validation_error")["errors"]


@pytest.mark.parametrize("audience", [{}, {"all": False}, {"org_ids": []}, {"include_sub_orgs": True}])
def test_an_empty_audience_is_refused(client, world, audience):
    token = staff_login(client, "city_admin")
    response = create(client, token, audience)
    if audience.get("org_ids") == []:  # an empty list is a field error
        assert_error(response, 422, "validation_error")
    else:
        assert_error(response, 422, "empty_audience")


def test_bad_audience_values(client, world):
    token = staff_login(client, "city_admin")
    assert "audience" in assert_error(create(client, token, {"skill_levels": ["master"]}), 422, "validation_error")["errors"]
    assert_error(create(client, token, {"competition_id": 999}), 422, "validation_error")
    assert_error(create(client, token, {"org_ids": [999]}), 422, "validation_error")
    assert_error(create(client, token, {"all": True, "whatever": 1}), 422, "validation_error")


def test_an_audience_that_matches_nobody_cannot_be_sent(client, world):
    token = staff_login(client, "city_admin")
    a = created(client, token, {"trades": ["潜水员"]})
    assert_error(client.post(f"{ADMIN}/{a['id']}/send", json={}, headers=bearer(token)), 422, "empty_audience")


def test_staff_address_only_their_subtree(client, world):
    people(2, world.orgs["factory"])
    people(3, world.orgs["mill"])
    people(1)  # a follower not bound to any union: only the city reaches them
    west = staff_login(client, "west_organiser")
    assert_error(create(client, west, {"org_ids": [world.orgs["factory"].id]}), 403, "org_out_of_scope")
    assert reach(client, west, {"all": True}) == 3
    assert reach(client, west, {"org_ids": [world.orgs["west"].id], "include_sub_orgs": True}) == 3
    city = staff_login(client, "city_admin")
    assert reach(client, city, {"all": True}) == 6
    city_a = created(client, city, {"all": True})
    assert_error(client.get(f"{ADMIN}/{city_a['id']}", headers=bearer(west)), 404, "not_found")
    assert [a["id"] for a in client.get(ADMIN, headers=bearer(west)).get_json()] != [city_a["id"]]
    assert city_a["id"] in [a["id"] for a in client.get(ADMIN, headers=bearer(city)).get_json()]
    viewer = staff_login(client, "city_viewer")
    assert_error(create(client, viewer, {"all": True}), 403, "role_forbidden")


def test_audience_variants(client, world):
    east, factory = world.orgs["east"], world.orgs["factory"]
    in_east = people(1, east, trade="焊工", skill_level="senior", worker_category="frontline")
    welders = people(2, factory, trade="焊工", skill_level="junior", worker_category="migrant")
    people(2, factory, trade="电工", skill_level="senior", worker_category="frontline")
    people(1, world.orgs["mill"], trade="焊工", skill_level="senior", worker_category="migrant")
    token = staff_login(client, "city_admin")
    assert reach(client, token, {"org_ids": [east.id]}) == 1
    assert reach(client, token, {"org_ids": [east.id], "include_sub_orgs": True}) == 5
    assert reach(client, token, {"trades": ["焊工"]}) == 4
    assert reach(client, token, {"trades": ["焊工"], "org_ids": [east.id], "include_sub_orgs": True}) == 3
    assert reach(client, token, {"skill_levels": ["senior"], "worker_categories": ["frontline"]}) == 3
    assert reach(client, token, {"worker_categories": ["migrant", "new_form"]}) == 3
    competition = make_competition(world)
    for pid, status in zip(welders + in_east, ("confirmed", "waitlisted", "withdrawn")):
        db.add(CompetitionEntry(competition_id=competition.id, person_id=pid, status=status))
    db.add(SubsidyApplication(program_id=world.program.id, person_id=in_east[0], kind="skill", status="submitted"))
    db.add(SubsidyApplication(program_id=world.program.id, person_id=welders[0], kind="skill", status="draft"))
    db.commit()
    assert reach(client, token, {"competition_id": competition.id}) == 2
    assert reach(client, token, {"program_id": world.program.id}) == 1


def test_not_read_audience(client, world, run_jobs):
    from tests.announcements import broadcast

    ids = people(3, world.orgs["factory"])
    people(2, world.orgs["mill"])
    token = staff_login(client, "city_admin")
    first = broadcast(client, token, {"org_ids": [world.orgs["factory"].id]}, run_jobs=run_jobs)
    db.add(AnnouncementRead(announcement_id=first["id"], person_id=ids[0]))
    db.commit()
    assert reach(client, token, {"not_read_announcement_id": first["id"]}) == 2
    west = staff_login(client, "west_organiser")
    assert_error(create(client, west, {"not_read_announcement_id": first["id"]}), 422, "validation_error")


def test_scheduling_in_the_past_is_refused(client, world):
    people(1, world.orgs["factory"])
    token = staff_login(client, "city_admin")
    a = created(client, token, {"all": True})
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    assert "at" in assert_error(client.post(f"{ADMIN}/{a['id']}/send", json={"at": past}, headers=bearer(token)),
                                422, "validation_error")["errors"]
