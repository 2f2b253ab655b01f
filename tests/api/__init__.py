"""Helpers shared by the mini-program and staff API tests: a small federation, logins, valid ID numbers, files."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from server.extensions import db
from server.models import Person, SubsidyProgram
from server.security import id_check_char
from server.services.orgs import create_org
from server.services.staff import create_staff

PASSWORD = "correct horse battery"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"0" * 64
_codes = itertools.count(1)
_ids = itertools.count(101)


def id_number(birth: str = "19900307") -> str:
    """A fresh valid 18-character ID number (check digit computed)."""
    first17 = f"110105{birth}{next(_ids) % 1000:03d}"
    return first17 + id_check_char(first17)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    """A city federation, two districts with one enterprise union each, staff, and a two-level programme."""

    orgs: dict = field(default_factory=dict)
    staff: dict = field(default_factory=dict)
    program: SubsidyProgram | None = None


def make_world(review_levels: int = 2, **program_fields) -> World:
    w = World()
    city = create_org(name="江城市总工会", kind="city")
    east = create_org(name="东湖区总工会", kind="district", parent=city)
    west = create_org(name="西山区总工会", kind="district", parent=city)
    w.orgs = {
        "city": city, "east": east, "west": west,
        "factory": create_org(name="东湖机械厂工会", kind="enterprise", parent=east, employer_name="东湖机械厂"),
        "mill": create_org(name="西山纺织厂工会", kind="enterprise", parent=west, employer_name="西山纺织厂"),
    }
    for username, org, role in [("city_admin", "city", "admin"), ("city_reviewer", "city", "reviewer"),
                                ("city_finance", "city", "finance"), ("city_viewer", "city", "viewer"),
                                ("factory_officer", "factory", "officer"), ("west_reviewer", "west", "reviewer")]:
        w.staff[username] = create_staff(username, PASSWORD, w.orgs[org], role)
    now = datetime.now(timezone.utc)
    values = dict(
        org_id=city.id, name="职工学历与技能提升补助", kinds=["degree", "skill"],
        eligibility={"member_required": True, "worker_categories": ["frontline", "migrant", "new_form"],
                     "min_membership_months": 6, "org_ids": None},
        required_documents={"degree": ["admission_notice_or_diploma", "tuition_invoice"],
                            "skill": ["certificate", "fee_invoice"]},
        window_start=now - timedelta(days=1), window_end=now + timedelta(days=60), per_person_cap_fen=250_000,
        max_people=100, budget_fen=100 * 250_000, review_levels=review_levels, status="open",
    )
    values.update(program_fields)
    w.program = SubsidyProgram(**values)
    db.add(w.program)
    db.commit()
    return w


def login(client, openid: str) -> str:
    response = client.post("/api/v1/auth/login", json={"code": f"sim:{openid}#{next(_codes)}"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["token"]


def staff_login(client, username: str) -> str:
    response = client.post("/api/admin/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["token"]


def worker(client, world: World, openid: str, org: str = "factory", member: bool = True, **profile) -> tuple[str, str]:
    """Log a worker in, fill in the profile, make them a member for two years: (token, plain ID number)."""
    token = login(client, openid)
    number = profile.pop("id_number", None) or id_number()
    body = {"real_name": "张" + openid[:4], "phone": "13800138000", "id_number": number,
            "org_id": world.orgs[org].id, "worker_category": "frontline", **profile}
    response = client.put("/api/v1/me", json=body, headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    person = db.get(Person, response.get_json()["id"])
    db.refresh(person)
    person.is_member, person.member_since = member, date.today() - timedelta(days=730)
    db.commit()
    return token, number


def skill_draft(client, token: str, program_id: int, number: str = "S-2026-0001", invoice: str = "INV-0001",
                amount: int = 200_000) -> dict:
    body = {"program_id": program_id, "kind": "skill", "certificate_name": "焊工", "certificate_level": "高级工",
            "certificate_number": number, "invoice_number": invoice, "requested_fen": amount}
    response = client.post("/api/v1/subsidy/applications", json=body, headers=bearer(token))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def upload(client, token: str, app_id: int, doc_type: str, data: bytes = PDF, filename: str = "proof.pdf"):
    import io

    return client.post(f"/api/v1/subsidy/applications/{app_id}/attachments", headers=bearer(token),
                       data={"doc_type": doc_type, "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def ready_application(client, token: str, program_id: int, **draft) -> dict:
    """A skill application with both proofs, submitted."""
    app = skill_draft(client, token, program_id, **draft)
    for doc in ("certificate", "fee_invoice"):
        assert upload(client, token, app["id"], doc).status_code == 201
    response = client.post(f"/api/v1/subsidy/applications/{app['id']}/submit", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def decide(client, token: str, app_id: int, **body):
    return client.post(f"/api/admin/v1/subsidy/applications/{app_id}/decision", json=body, headers=bearer(token))


def pay(client, token: str, app_id: int, **body):
    return client.post(f"/api/admin/v1/subsidy/applications/{app_id}/payment", json=body, headers=bearer(token))


def body_text(response) -> str:
    return response.get_data(as_text=True) if response.is_json else ""


def assert_error(response, status: int, code: str, **extra):
    body = response.get_json()
    assert response.status_code == status, body
    assert body["code"] == code, body
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), body
    for key, value in extra.items():
        assert body[key] == value, body
    return body


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)
