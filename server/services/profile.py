"""The worker's profile: binding a WeChat login to a member record.

The ID number is stored encrypted with a keyed hash for uniqueness and only
ever shown masked; :func:`profile_view` is the one way a person is shown to
the person themself.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from server.errors import Conflict, ServiceError
from server.extensions import db
from server.models import Organisation, OrgKind, Person
from server.security import birth_date_from_id, gender_from_id, mask_id_number
from server.services.audit import record_audit
from server.services.txn import savepoint_or

PROFILE_FIELDS = ("real_name", "phone", "employer", "trade", "skill_level", "education", "worker_category")


def _cipher():
    return current_app.extensions["unionhub"]["id_cipher"]


def masked_id_number(person: Person) -> str | None:
    return mask_id_number(_cipher().decrypt(person.id_number_enc))


def profile_view(person: Person) -> dict:
    view = {name: getattr(person, name) for name in PROFILE_FIELDS}
    view.update(id=person.id, bound=person.bound, id_number_masked=masked_id_number(person), gender=person.gender,
                birth_date=person.birth_date, org_id=person.org_id, org_name=person.org.name if person.org else None,
                is_member=person.is_member, member_since=person.member_since)
    return view


def _enterprise_union(org_id: int) -> Organisation:
    org = db.get(Organisation, org_id)
    if org is None or not org.active or org.kind != OrgKind.ENTERPRISE.value:
        raise ServiceError("validation_error", "提交的信息有误，请检查后重试", 422,
                           errors={"org_id": ["请选择所在的企业工会"]})
    return org


def update_profile(person: Person, data: dict) -> Person:
    """Apply a validated ProfileUpdateSchema payload; 409 ``id_number_taken`` when bound to someone else."""
    taken = Conflict("id_number_taken", "该身份证号已被其他用户绑定，如有疑问请联系所在工会")
    with savepoint_or(taken):  # the unique hash also catches a concurrent binding of the same number
        if "org_id" in data:
            person.org = _enterprise_union(data["org_id"])
        for name in PROFILE_FIELDS:
            if name in data:
                setattr(person, name, data[name].strip() if isinstance(data[name], str) else data[name])
        if data.get("id_number"):
            digest = _cipher().index(data["id_number"])
            if db.scalar(select(Person.id).where(Person.id_number_hash == digest, Person.id != person.id)):
                raise taken
            person.id_number_hash = digest
            person.id_number_enc = _cipher().encrypt(data["id_number"])
            person.birth_date = birth_date_from_id(data["id_number"])
            person.gender = gender_from_id(data["id_number"])
        record_audit(person, "person.profile_updated", "person", person.id, org_id=person.org_id,
                     details={"fields": sorted(data)})
    return person
