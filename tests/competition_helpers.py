"""Helpers for the competition tests: a competition, bound entrants with tokens, sign-ups, the inbox."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select

from server.extensions import db
from server.models import Competition, CompetitionEntry, InboxMessage, Person
from server.services import auth
from tests.api import bearer, id_number

_names = itertools.count(1)


def make_competition(world, **fields) -> Competition:
    """A published city welding competition open for sign-up, capacity 3, rules every entrant below meets."""
    now = datetime.now(timezone.utc)
    values = dict(
        name="江城市焊工职业技能竞赛", trade="焊工", level="city", organiser_org_id=world.orgs["city"].id,
        venue="江城市技师学院焊接实训中心", signup_start=now - timedelta(days=1), signup_end=now + timedelta(days=10),
        theory_at=now + timedelta(days=20), practical_at=now + timedelta(days=21), capacity=3,
        eligibility={"member_required": True, "trades": ["焊工"], "min_skill_level": "intermediate",
                     "min_age": 18, "max_age": 55},
        status="published",
    )
    values.update(fields)
    competition = Competition(**values)
    db.add(competition)
    db.commit()
    return competition


@dataclass(frozen=True)
class Entrant:
    """Plain values, not an ORM object: a 4xx answer rolls the shared session back and detaches instances."""

    id: int
    plain_id_number: str


def entrant(world, org: str = "factory", birth: str = "19900307", **fields) -> tuple[Entrant, str]:
    """A bound union member (a senior welder) and a mini-program token for them."""
    cipher = current_app.extensions["unionhub"]["id_cipher"]
    number = id_number(birth)
    n = next(_names)
    values = dict(real_name=f"选手{n}", phone="13800138000", id_number_enc=cipher.encrypt(number),
                  id_number_hash=cipher.index(number), birth_date=date(int(birth[:4]), int(birth[4:6]), int(birth[6:])),
                  org_id=world.orgs[org].id, trade="焊工", skill_level="senior", is_member=True,
                  member_since=date(2020, 1, 1), mp_openid=f"mp-entrant-{n}")
    values.update(fields)
    person = Person(**values)
    db.add(person)
    db.flush()
    token = auth.issue_token(auth.API, {"person_id": person.id}, 3600)
    db.commit()
    return Entrant(person.id, number), token


def sign_up(client, token: str, competition_id: int):
    return client.post(f"/api/v1/competitions/{competition_id}/entries", headers=bearer(token))


def entry_of(person: Entrant, competition_id: int) -> CompetitionEntry:
    return db.scalars(select(CompetitionEntry).where(CompetitionEntry.person_id == person.id,
                                                     CompetitionEntry.competition_id == competition_id)
                      .order_by(CompetitionEntry.id.desc()).execution_options(populate_existing=True)).first()


def inbox_titles(person: Entrant) -> list[str]:
    return list(db.scalars(select(InboxMessage.title).where(InboxMessage.person_id == person.id)
                           .order_by(InboxMessage.id)))
