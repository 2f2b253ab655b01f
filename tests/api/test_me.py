"""The worker's profile: validation in Chinese, encrypted and masked ID numbers, one binding per ID number."""

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import AuditEntry, Person
from server.security import mask_id_number
from tests.api import assert_error, bearer, id_number, login, make_world


@pytest.fixture
def world():
    return make_world()


def test_profile_round_trip_with_masked_id_number(client, app, world):
    token = login(client, "alice")
    empty = client.get("/api/v1/me", headers=bearer(token)).get_json()
    assert empty["bound"] is False and empty["id_number_masked"] is None
    number = id_number()
    body = {"real_name": "李娜", "phone": "13912345678", "id_number": number, "org_id": world.orgs["factory"].id,
            "employer": "东湖机械厂", "trade": "焊工", "skill_level": "senior", "education": "vocational",
            "worker_category": "migrant"}
    response = client.put("/api/v1/me", json=body, headers=bearer(token))
    profile = response.get_json()
    assert response.status_code == 200
    assert profile["bound"] is True and profile["org_name"] == "东湖机械厂工会"
    assert profile["id_number_masked"] == mask_id_number(number) == number[:3] + "*" * 11 + number[-4:]
    assert profile["birth_date"] == "1990-03-07" and profile["gender"] in ("M", "F")
    assert number not in response.get_data(as_text=True) and "id_number" not in profile
    shown = client.get("/api/v1/me", headers=bearer(token))
    assert number not in shown.get_data(as_text=True)
    person = db.get(Person, profile["id"])
    db.refresh(person)
    assert number.encode() not in person.id_number_enc
    assert app.extensions["unionhub"]["id_cipher"].decrypt(person.id_number_enc) == number
    assert person.id_number_enc.decode() not in shown.get_data(as_text=True)
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "person.profile_updated"))
    assert entry.actor_type == "person" and entry.actor_id == person.id and "id_number" in entry.details["fields"]
    # A partial update keeps the rest.
    assert client.put("/api/v1/me", json={"trade": "电工"}, headers=bearer(token)).get_json()["real_name"] == "李娜"


@pytest.mark.parametrize("field,value,message", [
    ("id_number", "110105199003071234", "校验位"),
    ("id_number", "12345", "18位"),
    ("phone", "12345678901", "手机号"),
    ("real_name", "李", "长度"),
    ("skill_level", "wizard", "取值不在允许范围内"),
    ("worker_category", "astronaut", "取值不在允许范围内"),
    ("nickname", "x", "不支持的字段"),
])
def test_every_field_is_validated_in_chinese(client, world, field, value, message):
    token = login(client, "bob")
    body = assert_error(client.put("/api/v1/me", json={field: value}, headers=bearer(token)), 422, "validation_error")
    assert message in body["errors"][field][0]


def test_org_must_be_an_enterprise_union(client, world):
    token = login(client, "carol")
    for org_id in (world.orgs["east"].id, 999999):
        body = assert_error(client.put("/api/v1/me", json={"org_id": org_id}, headers=bearer(token)),
                            422, "validation_error")
        assert body["errors"]["org_id"] == ["请选择所在的企业工会"]


def test_an_id_number_bound_to_someone_else_is_refused(client, world):
    number = id_number()
    first = login(client, "dave")
    assert client.put("/api/v1/me", json={"id_number": number}, headers=bearer(first)).status_code == 200
    second = login(client, "erin")
    response = client.put("/api/v1/me", json={"id_number": number.lower(), "real_name": "王五"}, headers=bearer(second))
    assert_error(response, 409, "id_number_taken")
    assert number not in response.get_data(as_text=True)
    # Nothing of the refused update was kept; the owner may send it again.
    assert client.get("/api/v1/me", headers=bearer(second)).get_json()["real_name"] is None
    assert client.put("/api/v1/me", json={"id_number": number}, headers=bearer(first)).status_code == 200
