"""Organisation tree operations."""

from __future__ import annotations

from sqlalchemy import select

from server.extensions import db
from server.models import ORG_KIND_LABELS, Organisation, OrgKind


def create_org(*, name: str, kind: OrgKind | str, parent: Organisation | None = None, **fields) -> Organisation:
    """Create an organisation below ``parent`` and fill in its materialised path."""
    kind = OrgKind(kind)
    if kind is OrgKind.CITY and parent is not None:
        raise ValueError("a city federation has no parent")
    if kind is not OrgKind.CITY and parent is None:
        raise ValueError("a district or enterprise union needs a parent")
    org = Organisation(name=name, kind=kind.value, parent=parent, **fields)
    db.add(org)
    db.flush()  # assigns the id the path needs
    org.path = (parent.path if parent else "/") + f"{org.id}/"
    db.flush()
    return org


def subtree_ids(org: Organisation) -> list[int]:
    """Ids of ``org`` and every organisation below it."""
    return list(db.scalars(select(Organisation.id).where(Organisation.path.startswith(org.path))))


def list_orgs(kind: str | None = None, parent_id: int | None = None, q: str | None = None) -> list[dict]:
    stmt = select(Organisation).where(Organisation.active.is_(True)).order_by(Organisation.path)
    if kind:
        stmt = stmt.where(Organisation.kind == kind)
    if parent_id:
        stmt = stmt.where(Organisation.parent_id == parent_id)
    if q:
        stmt = stmt.where(Organisation.name.contains(q))
    return [
        {
            "id": o.id,
            "name": o.name,
            "short_name": o.short_name,
            "kind": o.kind,
            "kind_label": ORG_KIND_LABELS[OrgKind(o.kind)],
            "parent_id": o.parent_id,
            "employer_name": o.employer_name,
            "industry": o.industry,
        }
        for o in db.scalars(stmt)
    ]
