"""Sending an announcement: fan-out, the simulator gets each message once, inbox copies, progress, report."""

from jobs import broadcast
from server.extensions import db
from server.models import SubscribeConsent
from tests.announcements import (
    ADMIN, bearer, broadcast as send_now, created, inbox_count, openid, people, staff_login, statuses,
)


def test_send_now_reaches_each_follower_once_with_inbox_copies(client, world, sim, run_jobs):
    followers = people(5, world.orgs["factory"])
    inbox_only = people(2, world.orgs["mill"], follower=False)
    token = staff_login(client, "city_admin")
    a = send_now(client, token, {"all": True}, run_jobs=run_jobs)
    assert a["status"] == "done" and a["recipients"] == 7 and a["fanout_done"]
    for pid in followers:
        assert len(sim.messages(touser=openid(pid), api="message/template/send")) == 1
    assert len(sim.messages(api="message/template/send")) == 5
    assert a["progress"]["oa_template"] == {"sent": 5, "skipped": 2}
    assert inbox_count(a["id"]) == 7
    # A second fan-out of the same page (a retried job) creates and sends nothing new.
    before = statuses(a["id"])
    broadcast.fanout(a["id"], 0)
    run_jobs()
    assert statuses(a["id"]) == before and len(sim.messages(api="message/template/send")) == 5
    assert inbox_only  # they got only the inbox copy (and skipped rows saying why)
    reasons = {(r["channel"], r["reason"]) for r in client.get(f"{ADMIN}/{a['id']}/report", headers=bearer(token))
               .get_json()["reasons"]}
    assert ("oa_template", "no_openid") in reasons


def test_preview_counts_people_per_first_channel(client, world):
    people(3, world.orgs["factory"])
    mp_only = people(2, world.orgs["factory"], follower=False, mp_openid=None)
    with_consent = people(1, world.orgs["factory"], follower=False)
    from server.models import Person

    for n, pid in enumerate(mp_only + with_consent):
        db.get(Person, pid).mp_openid = f"mp-preview-{n}"
    db.add(SubscribeConsent(person_id=with_consent[0], template_id="mp_subscribe_announcement", remaining=1))
    db.commit()
    token = staff_login(client, "city_admin")
    a = created(client, token, {"org_ids": [world.orgs["factory"].id]})
    preview = client.get(f"{ADMIN}/{a['id']}/preview", headers=bearer(token)).get_json()
    assert preview == {"recipients": 6, "channels": {"oa_template": 3, "mp_subscribe": 1, "inbox": 2}, "groups": 0}
