"""/admin/rq: rq-dashboard behind the operators' login (handlers/ops_console.py)."""

from server.extensions import db
from server.services.staff import create_staff
from tests.api import PASSWORD, assert_error, bearer, staff_login

CONSOLE = "/admin/rq"


def _login(client, username: str, password: str = PASSWORD, **headers):
    return client.post(f"{CONSOLE}/login", data={"username": username, "password": password}, headers=headers)


def test_the_console_needs_an_operators_login(client, world, app):
    page = client.get(f"{CONSOLE}/", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["Location"].endswith(f"{CONSOLE}/login")
    data = client.get(f"{CONSOLE}/0/data/queues.json")
    assert data.status_code == 401
    form = client.get(f"{CONSOLE}/login")
    assert form.status_code == 200 and "任务队列控制台" in form.text and 'name="password"' in form.text

    wrong = _login(client, "city_admin", "not-the-password")
    assert wrong.status_code == 401 and "用户名或密码不正确" in wrong.text and client.get_cookie("unionhub_ops", path=CONSOLE) is None
    empty = _login(client, "city_admin", "")
    assert empty.status_code == 400 and "请输入用户名和密码" in empty.text
    reviewer = _login(client, "city_reviewer")
    assert reviewer.status_code == 403 and 'data-code="role_forbidden"' in reviewer.text
    assert client.get_cookie("unionhub_ops", path=CONSOLE) is None
    # an admin below the city federation sees only their own organisation's data: not the system's queues
    create_staff("east_admin", PASSWORD, world.orgs["east"], "admin")
    db.commit()
    east = _login(client, "east_admin")
    assert east.status_code == 403 and "市总工会" in east.text
    assert_error(client.get("/api/admin/v1/ops/queues", headers=bearer(staff_login(client, "east_admin"))), 403,
                 "role_forbidden")


def test_an_operator_sees_queues_and_failed_jobs_and_can_requeue(client, world, app, run_jobs):
    from jobs import queues
    from jobs.system import ping

    failing = queues.enqueue(ping)  # missing its argument: it fails in the worker
    run_jobs()
    assert _login(client, "city_admin", Origin="http://localhost").status_code == 302
    cookie = client.get_cookie("unionhub_ops", path=CONSOLE)
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    page = client.get(f"{CONSOLE}/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "RQ" in page.text
    import re

    for asset in re.findall(r'(?:href|src)="(/admin/rq/static/[^"]+)"', page.text)[:3]:
        assert client.get(asset).status_code == 200, asset
    assert re.search(r'(?:href|src)="/admin/rq/static/', page.text)
    listed = {q["name"]: q for q in client.get(f"{CONSOLE}/0/data/queues.json").get_json()["queues"]}
    assert "default" in listed
    failed = client.get(f"{CONSOLE}/0/data/jobs/default/failed/10/asc/1.json").get_json()
    assert failing.id in [j["id"] for j in failed["jobs"]]

    # another site cannot press the buttons, even with the operator's browser
    forged = client.post(f"{CONSOLE}/job/{failing.id}/requeue", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert failing.id in queues.get_queue(queues.DEFAULT).failed_job_registry.get_job_ids()
    requeued = client.post(f"{CONSOLE}/job/{failing.id}/requeue", headers={"Origin": "http://localhost"})
    assert requeued.status_code == 200 and requeued.get_json()["status"] == "OK"
    assert failing.id in queues.get_queue(queues.DEFAULT).job_ids

    client.post(f"{CONSOLE}/logout", headers={"Origin": "http://localhost"})
    assert client.get_cookie("unionhub_ops", path=CONSOLE) is None
    assert client.get(f"{CONSOLE}/0/data/queues.json").status_code == 401


def test_a_revoked_or_forged_cookie_gets_nothing(client, world):
    client.set_cookie("unionhub_ops", "forged-token", path=CONSOLE)
    assert client.get(f"{CONSOLE}/0/data/queues.json").status_code == 401
    assert _login(client, "city_admin").status_code == 302
    token = client.get_cookie("unionhub_ops", path=CONSOLE).value
    from server.services import auth

    auth.revoke_token(auth.STAFF, token)
    assert client.get(f"{CONSOLE}/0/data/queues.json").status_code == 401
