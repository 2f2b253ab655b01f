"""Fixtures for the notification engine: reachable workers, the simulator's state, no quiet hours by default."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import Delivery, Person, utcnow

_n = itertools.count(1)


@pytest.fixture(autouse=True)
def _awake(app, monkeypatch):
    """Tests run at any hour: no quiet hours unless a test sets them."""
    monkeypatch.setattr(app.extensions["unionhub"]["config"], "QUIET_HOURS", "00:00-00:00")


@pytest.fixture
def sim(simulator):
    return simulator.app.extensions["simulator"]


@pytest.fixture
def config(app):
    return app.extensions["unionhub"]["config"]


def make_person(**fields) -> Person:
    """A worker who follows the OA, uses the mini-program and wrote to the OA an hour ago (20 customer-service
    messages allowed for 47 more hours)."""
    n = next(_n)
    values = dict(real_name=f"职工{n}", oa_openid=f"oa-{n}", mp_openid=f"mp-{n}", oa_subscribed=True,
                  oa_last_interaction_at=utcnow() - timedelta(hours=1), oa_cs_until=utcnow() + timedelta(hours=47),
                  oa_cs_left=20)
    values.update(fields)
    person = Person(**values)
    db.add(person)
    db.commit()
    return person


@pytest.fixture
def person():
    return make_person


def rows(**where) -> list[Delivery]:
    query = select(Delivery).order_by(Delivery.id).execution_options(populate_existing=True)
    for key, value in where.items():
        query = query.where(getattr(Delivery, key) == value)
    return list(db.scalars(query))


def by_channel(person_id: int) -> dict[str, Delivery]:
    return {d.channel: d for d in rows(person_id=person_id)}


CONTEXT = {"program": "技能提升补助", "state": "已核准", "when": "2026-03-01 09:00", "amount": "1500.00",
           "application_id": 7, "reason": "材料齐全"}
