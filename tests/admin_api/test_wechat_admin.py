"""Staff maintain the Official Account's keyword replies; a worker links the account with a one-time code."""

import pytest

from server.wechat.simulator.push import text_push
from tests.api import assert_error, bearer, login, make_world, staff_login, worker
from tests.wechat.conftest import Pusher, reply_text


@pytest.fixture
def world():
    return make_world()


def test_city_admin_edits_keyword_replies_live(client, world):
    token = staff_login(client, "city_admin")
    created = client.post("/api/admin/v1/wechat/keywords", headers=bearer(token),
                          json={"keyword": "热线", "reply": "服务热线：12351", "priority": 10})
    assert created.status_code == 201
    pusher = Pusher(client)
    answer = pusher.post(text_push("oKeyword", "热线"), "safe")
    assert reply_text(answer.plain) == "服务热线：12351"
    reply_id = created.get_json()["id"]
    changed = client.patch(f"/api/admin/v1/wechat/keywords/{reply_id}", headers=bearer(token), json={"reply": "服务热线：12351转2"})
    assert changed.status_code == 200
    assert reply_text(pusher.post(text_push("oKeyword", "热线")).plain) == "服务热线：12351转2"
    listed = client.get("/api/admin/v1/wechat/keywords", headers=bearer(token)).get_json()
    assert [r["keyword"] for r in listed] == ["热线"]
    assert client.delete(f"/api/admin/v1/wechat/keywords/{reply_id}", headers=bearer(token)).status_code == 204
    assert "没能理解" in reply_text(pusher.post(text_push("oKeyword", "热线")).plain)


def test_keyword_edits_are_guarded(client, world):
    admin = staff_login(client, "city_admin")
    body = assert_error(client.post("/api/admin/v1/wechat/keywords", headers=bearer(admin),
                                    json={"keyword": "[oops", "match": "regex", "reply": "x"}), 422, "validation_error")
    assert "正则" in body["errors"]["keyword"][0]
    assert_error(client.post("/api/admin/v1/wechat/keywords", headers=bearer(admin), json={"keyword": "a", "reply": "b", "color": "red"}),
                 422, "validation_error")
    reviewer = staff_login(client, "city_reviewer")
    assert_error(client.post("/api/admin/v1/wechat/keywords", headers=bearer(reviewer), json={"keyword": "a", "reply": "b"}),
                 403, "role_forbidden")
    assert client.get("/api/admin/v1/wechat/keywords").status_code == 401
    assert_error(client.patch("/api/admin/v1/wechat/keywords/999", headers=bearer(admin), json={"reply": "x"}), 404, "not_found")


def test_a_staff_pattern_runs_in_linear_time_and_backreferences_are_refused(client, world):
    """Staff patterns run on RE2 (found by fuzzing: ``(a+)+$`` made Python's ``re`` take exponential time on a
    follower's text, 1 s for 24 characters, the worker killed a few characters later)."""
    admin = staff_login(client, "city_admin")
    created = client.post("/api/admin/v1/wechat/keywords", headers=bearer(admin),
                          json={"keyword": "(a+)+$", "match": "regex", "reply": "全是字母a", "priority": 10})
    assert created.status_code == 201
    pusher = Pusher(client)
    assert "没能理解" in reply_text(pusher.post(text_push("oRegex", "a" * 2000 + "!")).plain)  # instantly: no match
    assert reply_text(pusher.post(text_push("oRegex", "a" * 2000)).plain) == "全是字母a"
    assert client.post("/api/admin/v1/wechat/keywords", headers=bearer(admin),
                       json={"keyword": "^(会费|党费)", "match": "regex", "reply": "x"}).status_code == 201
    for backtracking_only in (r"(a)\1", "会费(?=标准)"):
        body = assert_error(client.post("/api/admin/v1/wechat/keywords", headers=bearer(admin),
                                        json={"keyword": backtracking_only, "match": "regex", "reply": "x"}),
                            422, "validation_error")
        assert "正则" in body["errors"]["keyword"][0]


def test_push_log_for_city_admins(client, world, run_jobs):
    Pusher(client).post(text_push("oSeen", "帮助"))
    run_jobs()
    admin = staff_login(client, "city_admin")
    pushes = client.get("/api/admin/v1/wechat/pushes?openid=oSeen", headers=bearer(admin)).get_json()
    assert len(pushes) == 1 and pushes[0]["bot"] == "help_bot" and pushes[0]["content"] == "帮助"
    officer = staff_login(client, "factory_officer")
    assert_error(client.get("/api/admin/v1/wechat/pushes", headers=bearer(officer)), 403, "role_forbidden")


def test_binding_code_links_the_official_account(client, world):
    from server.extensions import db
    from server.models import Person

    unbound = login(client, "newcomer")
    assert_error(client.post("/api/v1/me/oa-binding-code", headers=bearer(unbound)), 409, "profile_incomplete")
    token, _ = worker(client, world, "mpworker1")
    issued = client.post("/api/v1/me/oa-binding-code", headers=bearer(token))
    assert issued.status_code == 201
    code = issued.get_json()["code"]
    assert len(code) == 6 and code.isdigit()
    answer = Pusher(client).say("oFollower77", f"绑定 {code}")
    assert "绑定成功" in answer
    me = client.get("/api/v1/me", headers=bearer(token)).get_json()
    assert db.get(Person, me["id"]).oa_openid == "oFollower77"
