"""A city federation with organisers, and a competition with confirmed, checked-in entrants."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import CompetitionEntry
from server.services.staff import create_staff
from tests.api import PASSWORD, bearer, make_world, staff_login
from tests.competition_helpers import entrant, make_competition, sign_up

BASE = "/api/admin/v1/competitions"


@dataclass
class Field:
    """A competition and its entrants: (person, token, entry id) in sign-up order."""

    competition_id: int
    people: list

    def entry(self, n: int) -> int:
        return self.people[n][2]


@pytest.fixture
def world():
    w = make_world()
    for username, org, role in (("city_organiser", "city", "organiser"), ("east_organiser", "east", "organiser"),
                                ("west_organiser", "west", "organiser")):
        w.staff[username] = create_staff(username, PASSWORD, w.orgs[org], role)
    db.commit()
    return w


@pytest.fixture
def organiser(client, world):
    return bearer(staff_login(client, "city_organiser"))


def check_in(client, headers, competition_id: int, entry_id: int) -> None:
    token = db.scalar(select(CompetitionEntry.admission_token).where(CompetitionEntry.id == entry_id))
    response = client.post(f"{BASE}/{competition_id}/checkins", json={"code": f"UHE:{token}"}, headers=headers)
    assert response.status_code == 200, response.get_json()


@pytest.fixture
def field(client, world, organiser):
    """A competition (theory 40%, practical 60%) with four confirmed entrants, all but the last checked in."""

    def _make(n: int = 4, arrived: int | None = None, **fields) -> Field:
        comp = make_competition(world, capacity=10, theory_weight=40, practical_weight=60, **fields)
        people = []
        for i in range(n):
            person, token = entrant(world, real_name=["张三明", "李四", "欧阳娜娜", "王五"][i % 4])
            response = sign_up(client, token, comp.id)
            assert response.status_code == 201 and response.get_json()["status"] == "confirmed", response.get_json()
            people.append((person, token, response.get_json()["id"]))
        for _, _, entry_id in people[: n - 1 if arrived is None else arrived]:
            check_in(client, organiser, comp.id, entry_id)
        return Field(comp.id, people)

    return _make
