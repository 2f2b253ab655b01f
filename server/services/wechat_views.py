"""Read models the Official Account bots show: a worker's applications and entries, places left."""

from __future__ import annotations

from server.models import Competition, Person


def competition_places_left(competition: Competition) -> int:
    """Places not yet taken (entries arrive with the competitions area)."""
    return competition.capacity


def application_lines(person: Person) -> list[str]:
    return []


def entry_lines(person: Person) -> list[str]:
    return []
