"""Schedule, pause, resume, cancel, quiet hours, group bots, the workers' list, retries, operators' views."""

from datetime import datetime, timedelta, timezone

from freezegun import freeze_time
from sqlalchemy import select, update

from jobs import broadcast
from server.extensions import db
from server.models import Delivery
from tests.announcements import (
    ADMIN, act, bearer, broadcast as send_now, created, detail, inbox_count, openid, people, set_config,
    staff_login, status_of, statuses,
)
from tests.api import assert_error, login


def small_pages(monkeypatch, size=2):
    monkeypatch.setattr(broadcast, "PAGE", size)


def test_schedule_then_cron_starts_it(client, world, sim, run_jobs):
    people(3, world.orgs["factory"])
    token = staff_login(client, "city_admin")
    a = created(client, token, {"all": True})
    at = datetime.now(timezone.utc) + timedelta(hours=2)
    scheduled = act(client, token, a["id"], "send", at=at.isoformat()).get_json()
    assert scheduled["status"] == "scheduled" and scheduled["published_at"] is None
    assert broadcast.sweep_broadcasts()["started"] == []
    with freeze_time(at + timedelta(minutes=1)):
        assert broadcast.sweep_broadcasts()["started"] == [a["id"]]
        assert broadcast.sweep_broadcasts()["started"] == []  # a second scheduler finds nothing to start
    run_jobs()
    assert detail(client, token, a["id"])["status"] == "done"
    assert len(sim.messages(api="message/template/send")) == 3


def test_pause_resume(client, world, sim, run_jobs, monkeypatch):
    small_pages(monkeypatch)
    people(5, world.orgs["factory"])
    token = staff_login(client, "city_admin")
    a = created(client, token, {"all": True})
    act(client, token, a["id"], "send")
    broadcast.fanout(a["id"], 0)  # the first page only
    assert act(client, token, a["id"], "pause").get_json()["status"] == "paused"
    run_jobs()  # its batch leaves the rows pending; the next page does not run
    assert sim.messages(api="message/template/send") == []
    paused = detail(client, token, a["id"])
    assert paused["progress"] == {"oa_template": {"queued": 2}} and paused["recipients"] == 2
    assert_error(act(client, token, a["id"], "pause"), 409, "announcement_state")
    assert act(client, token, a["id"], "resume").get_json()["status"] == "sending"
    run_jobs()
    done = detail(client, token, a["id"])
    assert done["status"] == "done" and done["progress"] == {"oa_template": {"sent": 5}}
    assert len(sim.messages(api="message/template/send")) == 5


def test_cancel_stops_what_is_not_sent(client, world, sim, run_jobs, monkeypatch):
    small_pages(monkeypatch)
    people(5, world.orgs["factory"])
    token = staff_login(client, "city_admin")
    a = created(client, token, {"all": True})
    act(client, token, a["id"], "send")
    broadcast.fanout(a["id"], 0)
    assert act(client, token, a["id"], "cancel").get_json()["status"] == "cancelled"
    run_jobs()
    assert sim.messages(api="message/template/send") == []
    assert statuses(a["id"]) == {("oa_template", "cancelled"): 2}
    assert_error(act(client, token, a["id"], "resume"), 409, "announcement_state")


def test_quiet_hours_hold_non_urgent(client, world, sim, run_jobs):
    people(2, world.orgs["factory"])
    set_config(QUIET_HOURS="00:00-23:59")
    token = staff_login(client, "city_admin")
    held = send_now(client, token, {"all": True}, run_jobs=run_jobs)
    assert held["status"] == "sending" and held["progress"] == {"oa_template": {"queued": 2}}
    assert inbox_count(held["id"]) == 2  # the inbox copy is not held
    assert db.scalar(select(Delivery.not_before).where(Delivery.announcement_id == held["id"]).limit(1)) is not None
    urgent = send_now(client, token, {"all": True}, run_jobs=run_jobs, urgent=True)
    assert urgent["status"] == "done" and len(sim.messages(api="message/template/send")) == 2
    # Morning: the hold ends and the delivery sweep queues them.
    db.execute(update(Delivery).values(not_before=datetime.now(timezone.utc) - timedelta(seconds=1)))
    db.commit()
    from jobs.delivery import sweep_deliveries

    sweep_deliveries()
    run_jobs()
    broadcast.sweep_broadcasts()
    assert status_of(held["id"]) == "done" and len(sim.messages(api="message/template/send")) == 4


def test_failures_are_reported_with_reasons(client, world, sim, run_jobs):
    ids = people(5, world.orgs["factory"])
    for pid in ids[:2]:
        sim.set_subscribed(openid(pid), False)  # 43004: unfollowed since
    sim.add_fault(api="message/template/send", errcode=47003, count=1)  # bad data, permanent (hits any one send)
    token = staff_login(client, "city_admin")
    a = send_now(client, token, {"all": True}, run_jobs=run_jobs)
    assert a["status"] == "done"
    report = client.get(f"{ADMIN}/{a['id']}/report", headers=bearer(token)).get_json()
    codes = [r["error_code"] for r in report["failures"] if r["channel"] == "oa_template"]
    assert set(codes) == {43004, 47003} and len(codes) in (2, 3)
    assert report["totals"]["sent"] + report["totals"]["failed"] == 5
    assert {r["reason"] for r in report["reasons"] if r["error_code"] == 43004} and report["failures"][0]["reason"]


def test_retry_failed_requeues_only_transient(client, world, sim, run_jobs):
    from server.services.announcements import retry_failed

    ids = people(3, world.orgs["factory"])
    token = staff_login(client, "city_admin")
    a = send_now(client, token, {"all": True}, run_jobs=run_jobs)
    rows = db.scalars(select(Delivery.id).where(Delivery.announcement_id == a["id"]).order_by(Delivery.id)).all()
    for row_id, code in zip(rows, (-1, None, 43004)):
        db.execute(update(Delivery).where(Delivery.id == row_id).values(status="failed", error_code=code))
    db.commit()
    sim.clear_messages()
    assert retry_failed(a["id"]) == {"announcement_id": a["id"], "requeued": 2, "permanent": 1}
    db.commit()
    assert status_of(a["id"]) == "sending"
    run_jobs()
    assert status_of(a["id"]) == "done"
    assert {m["touser"] for m in sim.messages(api="message/template/send")} == {openid(ids[0]), openid(ids[1])}


def test_group_bot_gets_one_post_per_org(client, world, sim, run_jobs):
    people(2, world.orgs["factory"])
    people(1, world.orgs["east"])
    token = staff_login(client, "city_admin")
    for org, key in (("east", "east-bot-key-0001"), ("factory", "factory-bot-key-01"), ("mill", "mill-bot-key-0001")):
        url = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={key}"
        response = client.put(f"/api/admin/v1/orgs/{world.orgs[org].id}/webhook", json={"key": url},
                              headers=bearer(token))
        assert response.status_code == 200 and response.get_json()["key_masked"].startswith(key[:4])
    a = created(client, token, {"org_ids": [world.orgs["east"].id], "include_sub_orgs": True})
    assert client.get(f"{ADMIN}/{a['id']}/preview", headers=bearer(token)).get_json()["groups"] == 2
    act(client, token, a["id"], "send")
    run_jobs()
    broadcast.fanout(a["id"], 0)  # a repeated first page posts nothing more
    run_jobs()
    posts = sim.messages(api="webhook/send")
    assert sorted(p["webhook_key"] for p in posts) == ["east-bot-key-0001", "factory-bot-key-01"]
    assert "江城市总工会" in posts[0]["payload"]["markdown"]["content"]
    # A narrower audience (welders) posts to no group; a failing bot is reported.
    sim.set_webhook_failure("east-bot-key-0001", 93000)
    b = send_now(client, token, {"org_ids": [world.orgs["east"].id]}, run_jobs=run_jobs)
    assert b["progress"]["wecom_group"] == {"failed": 1}
    failure = client.get(f"{ADMIN}/{b['id']}/report", headers=bearer(token)).get_json()["failures"]
    assert [(f["channel"], f["error_code"]) for f in failure] == [("wecom_group", 93000)]
    hook = client.get(f"/api/admin/v1/orgs/{world.orgs['east'].id}/webhook", headers=bearer(token)).get_json()
    assert hook["last_error"].startswith("93000")
    assert_error(client.put(f"/api/admin/v1/orgs/{world.orgs['east'].id}/webhook", json={"key": "bad key!"},
                            headers=bearer(token)), 422, "validation_error")
    west = staff_login(client, "west_organiser")
    assert_error(client.put(f"/api/admin/v1/orgs/{world.orgs['east'].id}/webhook", json={"key": "abcdefgh12"},
                            headers=bearer(west)), 403, "role_forbidden")
    assert client.delete(f"/api/admin/v1/orgs/{world.orgs['mill'].id}/webhook", headers=bearer(token)).status_code == 204


def test_workers_see_their_announcements_and_reads_are_recorded(client, world, run_jobs):
    token_factory = login(client, "worker-factory")
    token_mill = login(client, "worker-mill")
    from server.models import Person

    for openid_, org in (("worker-factory", "factory"), ("worker-mill", "mill")):
        person = db.scalar(select(Person).where(Person.mp_openid.like(f"%{openid_}%")))
        person.org_id = world.orgs[org].id
    db.commit()
    staff = staff_login(client, "city_admin")
    to_east = send_now(client, staff, {"org_ids": [world.orgs["east"].id], "include_sub_orgs": True},
                       run_jobs=run_jobs, title="东湖区通知")
    to_all = send_now(client, staff, {"all": True}, run_jobs=run_jobs, title="全市通知")
    draft = created(client, staff, {"all": True}, title="草稿")
    listed = client.get("/api/v1/announcements", headers=bearer(token_factory)).get_json()
    assert [(a["title"], a["read"]) for a in listed] == [("全市通知", False), ("东湖区通知", False)]
    assert [a["title"] for a in client.get("/api/v1/announcements", headers=bearer(token_mill)).get_json()] == ["全市通知"]
    assert_error(client.get(f"/api/v1/announcements/{to_east['id']}", headers=bearer(token_mill)), 404, "not_found")
    assert_error(client.get(f"/api/v1/announcements/{draft['id']}", headers=bearer(token_mill)), 404, "not_found")
    opened = client.get(f"/api/v1/announcements/{to_east['id']}", headers=bearer(token_factory)).get_json()
    assert opened["read"] and opened["body"].startswith("各位职工")
    client.get(f"/api/v1/announcements/{to_east['id']}", headers=bearer(token_factory))  # twice: one read
    listed = client.get("/api/v1/announcements", headers=bearer(token_factory)).get_json()
    assert [(a["title"], a["read"]) for a in listed] == [("全市通知", False), ("东湖区通知", True)]
    again = created(client, staff, {"not_read_announcement_id": to_east["id"]})
    assert client.get(f"{ADMIN}/{again['id']}/preview", headers=bearer(staff)).get_json()["recipients"] == 0
    act(client, staff, to_all["id"], "cancel")  # done: cannot cancel
    assert len(client.get("/api/v1/announcements", headers=bearer(token_factory)).get_json()) == 2


def test_operators_see_queues_and_delivery_stats(client, world, run_jobs):
    people(2, world.orgs["factory"])
    admin = staff_login(client, "city_admin")
    send_now(client, admin, {"all": True})  # queued, not yet run
    queues = client.get("/api/admin/v1/ops/queues", headers=bearer(admin)).get_json()
    assert {q["name"]: q["queued"] for q in queues["queues"]}["default"] >= 1
    assert {"failed_jobs", "workers"} <= set(queues)
    run_jobs()
    stats = client.get("/api/admin/v1/ops/deliveries", headers=bearer(admin)).get_json()
    assert stats["by_channel"]["oa_template"] == {"sent": 2} and stats["in_flight"] == 0
    reviewer = staff_login(client, "city_reviewer")
    assert_error(client.get("/api/admin/v1/ops/queues", headers=bearer(reviewer)), 403, "role_forbidden")
