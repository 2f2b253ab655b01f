"""Competition alerts by trade and round reminders: scheduled with RQ, recomputed when a date moves, sent once."""

from datetime import datetime, timedelta, timezone

import pytest
from freezegun import freeze_time
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from sqlalchemy import select

from jobs import queues
from jobs.competition_reminders import reconcile_reminders, send_reminder
from server.extensions import db
from server.models import Competition, InboxMessage
from server.services.competition_reminders import JOB_PREFIX
from tests.api import assert_error, bearer
from tests.competition_helpers import entrant, make_competition, sign_up

from .conftest import BASE

REMINDER = "比赛即将开始"


def _stamp(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y%m%dT%H%MZ")


def _scheduled(app) -> set[str]:
    registry = ScheduledJobRegistry(queues.DEFAULT, connection=app.extensions["unionhub"]["redis"])
    return {i for i in registry.get_job_ids() if i.startswith(JOB_PREFIX)}


def _release_due(app) -> None:
    """What the worker's RQ scheduler does: move due scheduled jobs to their queues (at the frozen time)."""
    scheduler = RQScheduler(list(queues.ALL), connection=app.extensions["unionhub"]["redis"])
    scheduler.prepare_registries(list(queues.ALL))
    scheduler.enqueue_scheduled_jobs()


def _messages(person_id: int, title: str) -> list[str]:
    return list(db.scalars(select(InboxMessage.body).where(InboxMessage.person_id == person_id,
                                                           InboxMessage.title == title).order_by(InboxMessage.id)))


@pytest.fixture
def start():
    return datetime.now(timezone.utc).replace(second=0, microsecond=0)


def test_alert_subscription(client, world):
    _, token = entrant(world)
    url = "/api/v1/competition-alerts"
    assert client.get(url, headers=bearer(token)).get_json() == {"trades": []}
    answer = client.post(url, json={"trades": ["焊工", " 电工 ", "焊工"]}, headers=bearer(token))
    assert answer.status_code == 200 and answer.get_json() == {"trades": ["焊工", "电工"]}
    assert client.post(url, json={"trades": ["电工", "钳工"]}, headers=bearer(token)).get_json() == {
        "trades": ["电工", "钳工"]}
    assert client.get(url, headers=bearer(token)).get_json() == {"trades": ["电工", "钳工"]}
    for body in ({"trades": "焊工"}, {"trades": [""]}, {"trades": ["工"] * 21}, {"trades": ["焊工"], "x": 1}, {},
                 {"trades": ["长" * 65]}, {"trades": [None]}):
        assert_error(client.post(url, json=body, headers=bearer(token)), 422, "validation_error")
    assert client.delete(url, headers=bearer(token)).get_json() == {"trades": []}
    assert client.get(url, headers=bearer(token)).get_json() == {"trades": []}
    assert_error(client.get(url), 401, "unauthorized")


def test_round_reminders_follow_date_changes_and_are_sent_once(app, client, world, organiser, run_jobs, start):
    theory, practical = start + timedelta(days=15), start + timedelta(days=16)
    comp = make_competition(world, capacity=5, theory_at=theory, practical_at=practical)
    brief = client.put(f"{BASE}/{comp.id}/brief", json={"what_to_bring": "身份证、准考证、焊接面罩"}, headers=organiser)
    assert brief.status_code == 200 and brief.get_json() == {"what_to_bring": "身份证、准考证、焊接面罩"}
    people = [entrant(world) for _ in range(3)]
    for _, token in people:
        assert sign_up(client, token, comp.id).get_json()["status"] == "confirmed"
    withdrawn = client.delete(f"/api/v1/competitions/{comp.id}/entries/mine", headers=bearer(people[2][1]))
    assert withdrawn.status_code == 200

    first = reconcile_reminders()
    expected = {f"{JOB_PREFIX}{comp.id}-{r}-{o}-{_stamp(at)}" for o in ("1d", "1h")
                for r, at in (("theory", theory), ("practical", practical))}
    assert _scheduled(app) == expected and set(first["scheduled"]) == expected | {
        f"{JOB_PREFIX}{comp.id}-open-{_stamp(comp.signup_start)}"}  # sign-up is already open: the alert goes now
    assert reconcile_reminders() == {"scheduled": [], "cancelled": []}  # nothing changed, nothing to do

    moved = start + timedelta(days=12)
    patched = client.patch(f"/api/admin/v1/competitions/{comp.id}", json={"theory_at": moved.isoformat()},
                           headers=organiser)
    assert patched.status_code == 200, patched.get_json()
    second = reconcile_reminders()
    assert sorted(second["cancelled"]) == sorted(i for i in expected if i.startswith(f"{JOB_PREFIX}{comp.id}-theory"))
    assert _scheduled(app) == {i for i in expected if "-practical-" in i} | {
        f"{JOB_PREFIX}{comp.id}-theory-{o}-{_stamp(moved)}" for o in ("1d", "1h")}

    with freeze_time(moved - timedelta(days=1) + timedelta(minutes=1)):
        _release_due(app)
    assert run_jobs()["failed"] == 0
    for person, _ in people[:2]:
        [body] = _messages(person.id, REMINDER)
        assert "理论考试" in body and comp.venue in body and "身份证、准考证、焊接面罩" in body
    assert _messages(people[2][0].id, REMINDER) == []  # withdrawn: never reminded

    # Sent once: the next reconcile does not schedule it again, and running the job again sends nothing.
    with freeze_time(moved - timedelta(days=1) + timedelta(minutes=5)):
        again = reconcile_reminders()
        assert not [i for i in again["scheduled"] if "theory-1d" in i] and again["cancelled"] == []
        assert send_reminder(comp.id, f"theory-1d-{_stamp(moved)}") is None
        _release_due(app)
    run_jobs()
    assert [len(_messages(p.id, REMINDER)) for p, _ in people] == [1, 1, 0]
    # A stale key (the old theory date) is refused at send time.
    assert send_reminder(comp.id, f"theory-1d-{_stamp(theory)}") is None

    # The hour-before reminder arrives later; a cancelled competition loses its remaining reminders.
    with freeze_time(moved - timedelta(minutes=59)):
        _release_due(app)
    run_jobs()
    assert [len(_messages(p.id, REMINDER)) for p, _ in people] == [2, 2, 0]
    db.get(Competition, comp.id).status = "cancelled"
    db.commit()
    assert sorted(reconcile_reminders()["cancelled"]) == sorted(i for i in expected if "-practical-" in i)
    assert _scheduled(app) == set()


def test_sign_up_opening_alerts_subscribers_of_the_trade(app, client, world, run_jobs, start):
    welder, welder_token = entrant(world)
    electrician, electrician_token = entrant(world, trade="电工")
    client.post("/api/v1/competition-alerts", json={"trades": ["焊工"]}, headers=bearer(welder_token))
    client.post("/api/v1/competition-alerts", json={"trades": ["电工"]}, headers=bearer(electrician_token))
    opens = start + timedelta(days=2)
    comp = make_competition(world, signup_start=opens)
    assert f"{JOB_PREFIX}{comp.id}-open-{_stamp(opens)}" in reconcile_reminders()["scheduled"]
    run_jobs()
    assert _messages(welder.id, "竞赛报名开始") == []  # not yet
    with freeze_time(opens + timedelta(minutes=1)):
        _release_due(app)
    run_jobs()
    [body] = _messages(welder.id, "竞赛报名开始")
    assert comp.name in body and "名额3人" in body
    assert _messages(electrician.id, "竞赛报名开始") == []


def test_late_reminders_catch_up_with_only_the_latest_one(app, client, world, run_jobs, start):
    comp = make_competition(world, theory_at=start + timedelta(days=20), practical_at=None)
    person, token = entrant(world)
    sign_up(client, token, comp.id)
    comp = db.get(Competition, comp.id)
    comp.signup_end, comp.theory_at = start - timedelta(minutes=5), start + timedelta(minutes=30)
    db.commit()
    result = reconcile_reminders()
    assert result["scheduled"] == [f"{JOB_PREFIX}{comp.id}-theory-1h-{_stamp(start + timedelta(minutes=30))}"]
    assert _scheduled(app) == set()  # enqueued at once, not scheduled
    assert reconcile_reminders()["scheduled"] == []  # still queued: not twice
    run_jobs()
    assert len(_messages(person.id, REMINDER)) == 1
