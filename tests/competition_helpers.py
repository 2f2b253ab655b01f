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


def make_team(world, competition_id: int, size: int, org: str = "factory") -> tuple[int, list[int]]:
    """A forming team of ``size`` entrants made through the services and committed: (team id, person ids;
    the first is the captain)."""
    from server.services import competitions

    people = [entrant(world, org=org)[0].id for _ in range(size)]
    team = competitions.create_team(competition_id, f"第{next(_names)}队", person=db.get(Person, people[0]))
    db.flush()
    for pid in people[1:]:
        competitions.join_team(db.get(Person, pid), team.join_code)
    db.commit()
    return team.id, people


def recount(competition_id: int) -> dict:
    """What the places, quota counters and team counts should be, counted from the entries."""
    from collections import Counter

    from server.models.competitions import COUNTED_STATUSES, HOLDING_STATUSES

    entries = list(db.scalars(select(CompetitionEntry).where(CompetitionEntry.competition_id == competition_id)
                              .execution_options(populate_existing=True)))
    holding, counted = {s.value for s in HOLDING_STATUSES}, {s.value for s in COUNTED_STATUSES}
    active = counted | {"forming"}
    return {
        "holders": sorted(e.id for e in entries if e.status in holding),
        "quota": dict(Counter(e.quota_org_id for e in entries if e.quota_org_id and e.status in counted)),
        "teams": dict(Counter(e.team_id for e in entries if e.team_id and e.status in active)),
    }


def assert_counters_exact(competition_id: int) -> None:
    """The places (exactly ``capacity`` rows, one per entry holding a place and no other), the quota counters and
    the teams' member counts agree with a recount of the entries; one arrival number per unit, never beyond the
    competition's counter."""
    from server.models.competitions import (
        CompetitionCounter,
        CompetitionPlace,
        CompetitionQuotaCount,
        CompetitionTeam,
    )

    expected = recount(competition_id)
    comp = db.scalars(select(Competition).where(Competition.id == competition_id)
                      .execution_options(populate_existing=True)).one()
    places = db.execute(select(CompetitionPlace.place_no, CompetitionPlace.entry_id)
                        .where(CompetitionPlace.competition_id == competition_id)).all()
    quota = {q.org_id: q.active_count for q in db.scalars(
        select(CompetitionQuotaCount).where(CompetitionQuotaCount.competition_id == competition_id)
        .execution_options(populate_existing=True)) if q.active_count}
    teams = {t.id: t.member_count for t in db.scalars(
        select(CompetitionTeam).where(CompetitionTeam.competition_id == competition_id)
        .execution_options(populate_existing=True)) if t.member_count}
    holders = sorted(e for _, e in places if e is not None)
    assert (holders, quota, teams) == (expected["holders"], expected["quota"], expected["teams"])
    assert len(places) == comp.capacity
    if comp.org_quota:
        assert all(n <= comp.org_quota for n in quota.values())
    arrivals = db.execute(select(CompetitionEntry.arrival_no, CompetitionEntry.team_id, CompetitionEntry.id).where(
        CompetitionEntry.competition_id == competition_id, CompetitionEntry.arrival_no.is_not(None))).all()
    units = {}
    for arrival, team_id, entry_id in arrivals:  # one arrival number per entry, or per team
        units.setdefault(arrival, set()).add(team_id or -entry_id)
    last = db.scalar(select(CompetitionCounter.last_arrival_no).where(CompetitionCounter.competition_id == competition_id)
                     .execution_options(populate_existing=True))
    assert all(len(u) == 1 for u in units.values()) and max(units, default=0) <= last
