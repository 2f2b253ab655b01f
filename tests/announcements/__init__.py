"""Helpers for the announcement tests: people in bulk, staff logins, sending through the API."""

from __future__ import annotations

import itertools
from dataclasses import replace

from flask import current_app
from sqlalchemy import func, select

from server.extensions import db
from server.models import Announcement, Delivery, InboxMessage, Person
from tests.api import bearer, staff_login  # noqa: F401  (re-exported for the tests)

_serial = itertools.count(1)
ADMIN = "/api/admin/v1/announcements"


def set_config(**values) -> None:
    """Change the running app's settings (tests restore them in the conftest)."""
    ext = current_app.extensions["unionhub"]
    ext["config"] = replace(ext["config"], **values)


def people(count: int, org=None, follower: bool = True, **fields) -> list[int]:
    """``count`` workers in ``org`` (Official Account followers unless told otherwise); their ids."""
    made = []
    for _ in range(count):
        n = next(_serial)
        person = Person(org_id=org.id if org is not None else None, oa_openid=f"oa-ann-{n}" if follower else None,
                        oa_subscribed=follower, real_name=f"职工{n}", **fields)
        db.add(person)
        made.append(person)
    db.commit()
    return [p.id for p in made]


def openid(person_id: int) -> str | None:
    return db.scalar(select(Person.oa_openid).where(Person.id == person_id))


def create(client, token: str, audience: dict, **fields):
    body = {"title": "江城市总工会关于开展职工技能培训的通知", "body": "各位职工：\n本月起开展焊工、电工技能培训，欢迎报名。",
            "audience": audience, **fields}
    return client.post(ADMIN, json=body, headers=bearer(token))


def created(client, token: str, audience: dict, **fields) -> dict:
    response = create(client, token, audience, **fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def act(client, token: str, announcement_id: int, action: str, **body):
    return client.post(f"{ADMIN}/{announcement_id}/{action}", json=body, headers=bearer(token))


def detail(client, token: str, announcement_id: int) -> dict:
    response = client.get(f"{ADMIN}/{announcement_id}", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def broadcast(client, token: str, audience: dict, run_jobs=None, **fields) -> dict:
    """Create and send now (and run the jobs when given); the announcement as the API shows it."""
    a = created(client, token, audience, **fields)
    response = act(client, token, a["id"], "send")
    assert response.status_code == 200, response.get_json()
    if run_jobs is not None:
        run_jobs()
    return detail(client, token, a["id"])


def statuses(announcement_id: int) -> dict[tuple[str, str], int]:
    rows = db.execute(select(Delivery.channel, Delivery.status, func.count())
                      .where(Delivery.announcement_id == announcement_id)
                      .group_by(Delivery.channel, Delivery.status)).all()
    db.commit()
    return {(c, s): n for c, s, n in rows}


def inbox_count(announcement_id: int) -> int:
    n = db.scalar(select(func.count()).select_from(InboxMessage).where(
        InboxMessage.dedup_key.like(f"announcement:{announcement_id}:%")))
    db.commit()
    return n


def status_of(announcement_id: int) -> str:
    value = db.scalar(select(Announcement.status).where(Announcement.id == announcement_id)
                      .execution_options(populate_existing=True))
    db.commit()
    return value
