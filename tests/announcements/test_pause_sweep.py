"""The sweepers never wake a paused broadcast: neither its pending rows nor its unfinished fan-out."""

from datetime import datetime, timedelta, timezone

from freezegun import freeze_time

from jobs import broadcast
from jobs.delivery import sweep_deliveries
from tests.announcements import act, created, detail, people, staff_login


def test_sweepers_leave_a_paused_broadcast_alone(client, world, sim, run_jobs, monkeypatch):
    monkeypatch.setattr(broadcast, "PAGE", 2)
    people(5, world.orgs["factory"])
    token = staff_login(client, "city_admin")
    a = created(client, token, {"all": True})
    act(client, token, a["id"], "send")
    broadcast.fanout(a["id"], 0)  # the first page: 2 pending rows; the rest of the fan-out has not run
    assert act(client, token, a["id"], "pause").get_json()["status"] == "paused"
    run_jobs()
    later = datetime.now(timezone.utc) + timedelta(minutes=30)  # past every lease, stale and lost-job limit
    with freeze_time(later):
        sweep_deliveries()
        swept = broadcast.sweep_broadcasts()
        assert swept == {"started": [], "restarted": [], "finished": []}
        run_jobs()
        paused = detail(client, token, a["id"])
    assert sim.messages(api="message/template/send") == []
    assert paused["status"] == "paused" and paused["progress"] == {"oa_template": {"queued": 2}}
    assert act(client, token, a["id"], "resume").get_json()["status"] == "sending"
    run_jobs()
    done = detail(client, token, a["id"])
    assert done["status"] == "done" and done["progress"] == {"oa_template": {"sent": 5}}
    sent = sim.messages(api="message/template/send")
    assert len(sent) == 5 and len({m["touser"] for m in sent}) == 5
