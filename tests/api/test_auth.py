"""Mini-program and staff login: tokens, expiry, revocation, rate limits, identity linking."""

import time

import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import Person
from server.wechat.simulator.identity import identities
from tests.api import PASSWORD, assert_error, bearer, login, make_world, staff_login


def test_login_creates_a_person_and_returns_a_token(client, app, redis):
    response = client.post("/api/v1/auth/login", json={"code": "sim:alice"})
    body = response.get_json()
    assert response.status_code == 200
    assert set(body) == {"token", "expires_in", "user"}
    assert body["expires_in"] == app.extensions["unionhub"]["config"].API_TOKEN_TTL
    assert body["user"]["bound"] is False
    assert "session_key" not in response.get_data(as_text=True)
    person = db.get(Person, body["user"]["id"])
    assert person.mp_openid == "alice" and person.unionid == identities("alice")["unionid"]
    # Only a hash of the token is stored, with the token's lifetime.
    keys = [k.decode() for k in redis.keys("unionhub:auth:api:*")]
    assert len(keys) == 1 and body["token"] not in keys[0]
    assert 0 < redis.ttl(keys[0]) <= body["expires_in"]
    assert client.get("/api/v1/me", headers=bearer(body["token"])).status_code == 200
    # The same WeChat user logs in again: the same person.
    again = client.post("/api/v1/auth/login", json={"code": "sim:alice#2"}).get_json()
    assert again["user"]["id"] == body["user"]["id"] and again["token"] != body["token"]


def test_login_links_an_official_account_follower_by_unionid(client):
    ids = identities("bob")
    follower = Person(oa_openid=ids["oa_openid"], unionid=ids["unionid"], oa_subscribed=True)
    db.add(follower)
    db.commit()
    body = client.post("/api/v1/auth/login", json={"code": "sim:bob"}).get_json()
    assert body["user"]["id"] == follower.id
    db.refresh(follower)
    assert follower.mp_openid == "bob"
    assert db.scalar(select(func.count()).select_from(Person)) == 1


@pytest.mark.parametrize("code", ["not-a-sim-code", "sim:"])
def test_an_invalid_code_is_refused(client, code):
    assert_error(client.post("/api/v1/auth/login", json={"code": code}), 401, "invalid_code")


def test_a_code_works_once(client):
    assert client.post("/api/v1/auth/login", json={"code": "sim:carol"}).status_code == 200
    assert_error(client.post("/api/v1/auth/login", json={"code": "sim:carol"}), 401, "invalid_code")


def test_login_validation(client):
    assert_error(client.post("/api/v1/auth/login", json={}), 422, "validation_error")
    body = assert_error(client.post("/api/v1/auth/login", json={"code": "sim:x", "extra": 1}), 422, "validation_error")
    assert body["errors"] == {"extra": ["不支持的字段"]}


def test_missing_wrong_and_revoked_tokens(client):
    assert_error(client.get("/api/v1/me"), 401, "unauthorized")
    assert_error(client.get("/api/v1/me", headers=bearer("forged")), 401, "invalid_token")
    token = login(client, "dave")
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert_error(client.get("/api/v1/me", headers=bearer(token)), 401, "invalid_token")
    assert_error(client.post("/api/v1/auth/logout", headers=bearer(token)), 401, "invalid_token")


def test_tokens_expire(client, app, monkeypatch):
    monkeypatch.setattr(app.extensions["unionhub"]["config"], "API_TOKEN_TTL", 1)
    token = login(client, "erin")
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    time.sleep(1.5)
    assert_error(client.get("/api/v1/me", headers=bearer(token)), 401, "invalid_token")


def test_too_many_logins_from_one_client(client):
    for i in range(10):
        client.post("/api/v1/auth/login", json={"code": f"sim:frank#{i}"})
    body = assert_error(client.post("/api/v1/auth/login", json={"code": "sim:frank#x"}), 429, "too_many_requests")
    assert body["retry_after"] >= 1
    # Another client is not affected.
    other = client.post("/api/v1/auth/login", json={"code": "sim:gina"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200
    # Behind the proxy, clients are told apart by the address the proxy appends; a forged first entry is ignored.
    proxied = {"X-Forwarded-For": "203.0.113.7, 198.51.100.20"}
    for i in range(10):
        client.post("/api/v1/auth/login", json={"code": f"sim:hana#{i}"}, headers=proxied)
    assert_error(client.post("/api/v1/auth/login", json={"code": "sim:hana#x"},
                             headers={"X-Forwarded-For": "1.2.3.4, 198.51.100.20"}), 429, "too_many_requests")
    other_client = client.post("/api/v1/auth/login", json={"code": "sim:ivan"},
                               headers={"X-Forwarded-For": "198.51.100.21"})
    assert other_client.status_code == 200


def test_staff_login_logout_and_scope_of_tokens(client):
    world = make_world()
    response = client.post("/api/admin/v1/auth/login", json={"username": "city_reviewer", "password": PASSWORD})
    body = response.get_json()
    assert response.status_code == 200 and body["staff"]["org_name"] == "江城市总工会"
    assert "password" not in response.get_data(as_text=True)
    token = body["token"]
    me = client.get("/api/admin/v1/auth/me", headers=bearer(token)).get_json()
    assert me["username"] == "city_reviewer" and me["role"] == "reviewer"
    # A staff token is not a worker token and the other way round.
    assert_error(client.get("/api/v1/me", headers=bearer(token)), 401, "invalid_token")
    worker_token = login(client, "henry")
    assert_error(client.get("/api/admin/v1/auth/me", headers=bearer(worker_token)), 401, "invalid_token")
    assert client.post("/api/admin/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert_error(client.get("/api/admin/v1/auth/me", headers=bearer(token)), 401, "invalid_token")
    # A deactivated account loses its token at once.
    token = staff_login(client, "city_reviewer")
    world.staff["city_reviewer"].active = False
    db.commit()
    assert_error(client.get("/api/admin/v1/auth/me", headers=bearer(token)), 401, "invalid_token")
    assert_error(client.post("/api/admin/v1/auth/login", json={"username": "city_reviewer", "password": PASSWORD}),
                 401, "invalid_credentials")


def test_staff_login_refusals_and_rate_limit(client):
    make_world()
    wrong = {"username": "city_admin", "password": "wrong"}
    assert_error(client.post("/api/admin/v1/auth/login", json=wrong), 401, "invalid_credentials")
    assert_error(client.post("/api/admin/v1/auth/login", json={"username": "nobody", "password": "x"}),
                 401, "invalid_credentials")
    for _ in range(8):
        client.post("/api/admin/v1/auth/login", json=wrong)
    assert_error(client.post("/api/admin/v1/auth/login", json={"username": "city_admin", "password": PASSWORD}),
                 429, "too_many_requests")


def test_openapi_documents_the_bearer_scheme(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["paths"]["/api/v1/me"]["get"]["security"] == [{"bearer": []}]
    assert "401" in spec["paths"]["/api/v1/me"]["put"]["responses"]
    assert "security" not in spec["paths"]["/api/v1/auth/login"]["post"]
    upload = spec["paths"]["/api/v1/subsidy/applications/{app_id}/attachments"]["post"]
    assert "parameters" not in upload or all(p["in"] == "path" for p in upload["parameters"])
    assert "multipart/form-data" in upload["requestBody"]["content"]
    for path in ("/api/v1/subsidy/applications/{app_id}/submit", "/api/admin/v1/subsidy/applications/{app_id}/decision",
                 "/api/admin/v1/subsidy/programs/{program_id}/export", "/api/admin/v1/auth/login"):
        assert path in spec["paths"]
