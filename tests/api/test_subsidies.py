"""Subsidy applications from the worker's side, end to end through review and payment."""

import hashlib
import io
import os
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from jobs.notifications import sweep_returned_applications
from server.extensions import db
from server.models import AuditEntry, InboxMessage, SubsidyApplication, SubsidyProgram
from tests.api import (
    JPEG,
    PDF,
    PNG,
    assert_error,
    bearer,
    decide,
    login,
    make_world,
    pay,
    ready_application,
    skill_draft,
    staff_login,
    upload,
    worker,
)


@pytest.fixture
def world():
    return make_world()


def _get(client, token, app_id):
    return client.get(f"/api/v1/subsidy/applications/{app_id}", headers=bearer(token))


def _inbox(person_id):
    return list(db.scalars(select(InboxMessage).where(InboxMessage.person_id == person_id)
                           .order_by(InboxMessage.id)))


def test_programmes_are_listed_with_what_is_left(client, world):
    programs = client.get("/api/v1/subsidy/programs").get_json()
    assert len(programs) == 1
    p = programs[0]
    assert p["kind_labels"] == {"degree": "学历提升", "skill": "技能提升"}
    assert p["per_person_cap_fen"] == 250_000 and p["places_left"] == 100 and p["budget_left_fen"] == 25_000_000
    assert p["accepting"] is True and p["review_levels"] == 2
    assert "工会会员" in p["eligibility_text"] and "入会满6个月" in p["eligibility_text"]
    assert p["required_document_labels"]["fee_invoice"] == "培训或鉴定费用发票"
    assert client.get(f"/api/v1/subsidy/programs/{p['id']}").get_json()["name"] == p["name"]
    assert_error(client.get("/api/v1/subsidy/programs/9999"), 404, "not_found")


def test_happy_path_login_to_payment(client, world, run_jobs):
    token, number = worker(client, world, "alice")
    officer, reviewer, finance = (staff_login(client, u) for u in ("factory_officer", "city_reviewer", "city_finance"))
    seen = []  # every response body, to prove the plain ID number never leaves the server

    def call(response):
        seen.append(response.get_data(as_text=True))
        return response

    draft = skill_draft(client, token, world.program.id)
    assert draft["status"] == "draft" and draft["kind_label"] == "技能提升"
    assert {m["code"] for m in draft["missing"]} == {"missing_document"}
    jpg = call(upload(client, token, draft["id"], "certificate", JPEG, "证书.jpg")).get_json()
    assert jpg["content_type"] == "image/jpeg" and jpg["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert call(upload(client, token, draft["id"], "fee_invoice", PNG, "invoice.png")).status_code == 201
    assert call(_get(client, token, draft["id"])).get_json()["missing"] == []
    submitted = call(client.post(f"/api/v1/subsidy/applications/{draft['id']}/submit", headers=bearer(token)))
    assert submitted.get_json()["status"] == "submitted"
    app_id = draft["id"]

    level1 = call(decide(client, officer, app_id, decision="approve", amount_fen=180_000, reason="材料齐全"))
    assert level1.status_code == 200 and level1.get_json()["status"] == "under_review"
    assert level1.get_json()["recommended_fen"] == 180_000
    assert level1.get_json()["applicant"]["id_number_masked"] == number[:3] + "*" * 11 + number[-4:]
    final = call(decide(client, reviewer, app_id, decision="approve", amount_fen=150_000))
    assert final.status_code == 200
    body = final.get_json()
    assert body["status"] == "approved" and body["approved_fen"] == 150_000 and body["requested_fen"] == 200_000
    program = call(client.get(f"/api/v1/subsidy/programs/{world.program.id}")).get_json()
    assert program["committed_fen"] == 150_000 and program["places_left"] == 99
    paid = call(pay(client, finance, app_id, result="paid", reference="BANK-20260301-001"))
    assert paid.get_json()["status"] == "paid" and paid.get_json()["payment_reference"] == "BANK-20260301-001"
    detail = call(_get(client, token, app_id)).get_json()
    assert [h["to_status"] for h in detail["history"]] == ["draft", "submitted", "under_review", "approved", "paid"]
    assert detail["history"][3]["amount_fen"] == 150_000
    assert call(client.get("/api/v1/subsidy/applications", headers=bearer(token))).get_json()[0]["status"] == "paid"
    db.expire_all()
    assert db.get(SubsidyProgram, world.program.id).paid_fen == 150_000
    assert all(number not in text for text in seen)

    audit = db.scalars(select(AuditEntry).where(AuditEntry.entity_type == "subsidy_application")
                       .order_by(AuditEntry.id)).all()
    transitions = [(a.actor_type, a.from_state, a.to_state) for a in audit if a.to_state]
    assert transitions == [("person", None, "draft"), ("person", "draft", "submitted"),
                           ("staff", "submitted", "under_review"), ("staff", "under_review", "approved"),
                           ("staff", "approved", "paid")]
    assert audit[-1].actor_id == world.staff["city_finance"].id

    assert _inbox(detail["history"][0] and db.get(SubsidyApplication, app_id).person_id) == []  # not before the jobs
    outcome = run_jobs()
    assert outcome["failed"] == 0
    messages = _inbox(db.get(SubsidyApplication, app_id).person_id)
    assert [m.title for m in messages] == ["补助申请已提交", "补助申请已核准", "补助已发放"]
    assert "1500.00元" in messages[1].body and messages[0].link.endswith(f"id={app_id}")


def test_return_fix_and_resubmit_then_expiry(client, world, run_jobs):
    token, _ = worker(client, world, "bob")
    reviewer = staff_login(client, "city_reviewer")
    app = ready_application(client, token, world.program.id)
    assert_error(decide(client, reviewer, app["id"], decision="return"), 422, "validation_error")
    deadline = (datetime.now(timezone.utc) + timedelta(days=3)).isoformat()
    returned = decide(client, reviewer, app["id"], decision="return", reason="发票不清晰", return_deadline=deadline)
    assert returned.get_json()["status"] == "returned" and returned.get_json()["reason"] == "发票不清晰"
    # The worker fixes it: a new invoice, edited number, then resubmits.
    att = next(a for a in _get(client, token, app["id"]).get_json()["attachments"] if a["doc_type"] == "fee_invoice")
    assert client.delete(f"/api/v1/subsidy/applications/{app['id']}/attachments/{att['id']}",
                         headers=bearer(token)).status_code == 204
    missing = _get(client, token, app["id"]).get_json()["missing"]
    assert [m["code"] for m in missing] == ["missing_document"]
    assert upload(client, token, app["id"], "fee_invoice", PDF).status_code == 201
    edited = client.patch(f"/api/v1/subsidy/applications/{app['id']}", json={"invoice_number": "INV-0002"},
                          headers=bearer(token))
    assert edited.get_json()["invoice_number"] == "INV-0002"
    again = client.post(f"/api/v1/subsidy/applications/{app['id']}/submit", headers=bearer(token)).get_json()
    assert again["status"] == "submitted" and again["return_deadline"] is None
    assert decide(client, reviewer, app["id"], decision="approve").get_json()["status"] == "under_review"

    # A second application returned and left alone: reminded, then expired by the sweep.
    other = ready_application(client, token, world.program.id, number="S-2", invoice="INV-9", amount=10_000)
    decide(client, reviewer, other["id"], decision="return", reason="请补充证书背面")
    row = db.get(SubsidyApplication, other["id"])
    db.refresh(row)
    row.return_deadline = datetime.now(timezone.utc) + timedelta(hours=5)
    db.commit()
    assert sweep_returned_applications() == {"expired": [], "reminded": [other["id"]]}
    assert sweep_returned_applications()["reminded"] == [other["id"]]  # the reminder job is idempotent
    row = db.get(SubsidyApplication, other["id"])
    row.return_deadline = datetime.now(timezone.utc) - timedelta(minutes=1)
    db.commit()
    late = client.post(f"/api/v1/subsidy/applications/{other['id']}/submit", headers=bearer(token))
    assert_error(late, 409, "invalid_state", current_state="returned")
    assert sweep_returned_applications()["expired"] == [other["id"]]
    assert _get(client, token, other["id"]).get_json()["status"] == "expired"
    run_jobs()
    titles = [m.title for m in _inbox(row.person_id)]
    assert titles.count("补充材料即将到期") == 1 and titles.count("补助申请需补充材料") == 2
    assert "补助申请已失效" in titles
    expire = db.scalar(select(AuditEntry).where(AuditEntry.to_state == "expired"))
    assert expire.actor_type == "system" and expire.from_state == "returned"


def test_reject_and_withdraw(client, world, run_jobs):
    token, _ = worker(client, world, "carol")
    officer = staff_login(client, "factory_officer")
    app = ready_application(client, token, world.program.id)
    rejected = decide(client, officer, app["id"], decision="reject", reason="证书不在补助目录内")
    assert rejected.get_json()["status"] == "rejected"
    assert_error(client.post(f"/api/v1/subsidy/applications/{app['id']}/withdraw", headers=bearer(token)),
                 409, "invalid_state", current_state="rejected")
    # A rejection frees the certificate number for a new application.
    second = ready_application(client, token, world.program.id)
    withdrawn = client.post(f"/api/v1/subsidy/applications/{second['id']}/withdraw", json={"reason": "不申请了"},
                            headers=bearer(token))
    assert withdrawn.get_json()["status"] == "withdrawn"
    assert_error(decide(client, officer, second["id"], decision="approve"), 409, "invalid_state",
                 current_state="withdrawn")
    draft = skill_draft(client, token, world.program.id)
    assert client.post(f"/api/v1/subsidy/applications/{draft['id']}/withdraw",
                       headers=bearer(token)).get_json()["status"] == "withdrawn"
    run_jobs()
    titles = [m.title for m in _inbox(db.get(SubsidyApplication, app["id"]).person_id)]
    assert "补助申请未通过" in titles and "证书不在补助目录内" in "".join(
        m.body for m in _inbox(db.get(SubsidyApplication, app["id"]).person_id))


def test_invalid_state_answers_409_with_the_current_state(client, world):
    token, _ = worker(client, world, "dave")
    reviewer, finance = staff_login(client, "city_reviewer"), staff_login(client, "city_finance")
    app = ready_application(client, token, world.program.id)
    submit = client.post(f"/api/v1/subsidy/applications/{app['id']}/submit", headers=bearer(token))
    assert_error(submit, 409, "invalid_state", current_state="submitted")
    assert_error(client.patch(f"/api/v1/subsidy/applications/{app['id']}", json={"note": "x"}, headers=bearer(token)),
                 409, "invalid_state", current_state="submitted")
    assert_error(upload(client, token, app["id"], "certificate"), 409, "invalid_state", current_state="submitted")
    assert_error(pay(client, finance, app["id"], result="paid", reference="R1"), 409, "invalid_state",
                 current_state="submitted")
    decide(client, reviewer, app["id"], decision="approve")
    decide(client, reviewer, app["id"], decision="approve")
    assert_error(decide(client, reviewer, app["id"], decision="approve"), 409, "invalid_state",
                 current_state="approved")
    assert_error(client.post(f"/api/v1/subsidy/applications/{app['id']}/withdraw", headers=bearer(token)),
                 409, "invalid_state", current_state="approved")
    failed = pay(client, finance, app["id"], result="failed", reason="账户已注销")
    assert failed.get_json()["status"] == "payment_failed"
    assert_error(pay(client, finance, app["id"], result="failed", reason="again"), 409, "invalid_state",
                 current_state="payment_failed")
    assert_error(pay(client, finance, app["id"], result="paid"), 422, "validation_error")
    assert pay(client, finance, app["id"], result="paid", reference="R2").get_json()["status"] == "paid"
    draft = skill_draft(client, token, world.program.id, number="S-9", invoice="I-9", amount=1000)
    assert_error(decide(client, reviewer, draft["id"], decision="approve"), 404, "not_found")  # staff never see drafts


def test_submit_lists_every_problem_at_once(client, world):
    token, _ = worker(client, world, "erin", member=False, worker_category="technical")
    body = {"program_id": world.program.id, "kind": "skill", "certificate_name": "电工", "requested_fen": 300_000}
    draft = client.post("/api/v1/subsidy/applications", json=body, headers=bearer(token)).get_json()
    refused = assert_error(client.post(f"/api/v1/subsidy/applications/{draft['id']}/submit", headers=bearer(token)),
                           422, "not_submittable")
    codes = {p["code"] for p in refused["problems"]}
    assert codes == {"not_member", "category_not_eligible", "missing_field", "missing_document", "exceeds_cap"}
    assert "请填写证书等级" in refused["errors"]["certificate_level"]
    assert "请填写发票号码" in refused["errors"]["invoice_number"]
    assert any("2500.00元" in m for m in refused["errors"]["requested_fen"])
    assert _get(client, token, draft["id"]).get_json()["status"] == "draft"
    # An unbound worker and a worker too recently joined.
    fresh = login(client, "frank")
    draft = skill_draft(client, fresh, world.program.id, number="F-1", invoice="F-1")
    refused = client.post(f"/api/v1/subsidy/applications/{draft['id']}/submit", headers=bearer(fresh)).get_json()
    assert {"profile_incomplete", "not_member"} <= {p["code"] for p in refused["problems"]}


def test_draft_validation(client, world):
    token, _ = worker(client, world, "gina")
    post = lambda body: client.post("/api/v1/subsidy/applications", json=body, headers=bearer(token))  # noqa: E731
    assert_error(post({"program_id": world.program.id, "kind": "housing"}), 422, "validation_error")
    body = assert_error(post({"program_id": world.program.id, "kind": "skill", "requested_fen": -1, "colour": "red"}),
                        422, "validation_error")
    assert set(body["errors"]) == {"requested_fen", "colour"}
    assert_error(post({"program_id": 424242, "kind": "skill"}), 404, "not_found")
    world.program.status = "closed"
    db.commit()
    assert_error(post({"program_id": world.program.id, "kind": "skill"}), 404, "not_found") \
        if False else assert_error(post({"program_id": world.program.id, "kind": "skill"}), 409, "program_not_open")
    world.program.status, world.program.kinds = "open", ["degree"]
    db.commit()
    body = assert_error(post({"program_id": world.program.id, "kind": "skill"}), 422, "validation_error")
    assert body["errors"]["kind"] == ["本项目不提供该补助类别"]


def test_duplicate_certificate_and_invoice_numbers_across_people(client, world):
    first, _ = worker(client, world, "henry")
    second, _ = worker(client, world, "irene")
    ready_application(client, first, world.program.id, number="GJ-2026-0001", invoice="FP 8888")
    same = skill_draft(client, second, world.program.id, number="gj 2026 0001", invoice="fp-8888")
    refused = client.post(f"/api/v1/subsidy/applications/{same['id']}/submit", headers=bearer(second)).get_json()
    assert {p["code"] for p in refused["problems"]} >= {"duplicate_certificate", "duplicate_invoice"}
    # The same person cannot claim the same certificate twice either.
    again = skill_draft(client, first, world.program.id, number="GJ20260001", invoice="OTHER")
    refused = client.post(f"/api/v1/subsidy/applications/{again['id']}/submit", headers=bearer(first)).get_json()
    assert [p["code"] for p in refused["problems"] if p["code"].startswith("duplicate")] == ["duplicate_certificate"]


def test_the_unique_index_backs_the_duplicate_check(client, world, monkeypatch):
    from server.services import subsidies

    first, _ = worker(client, world, "jack")
    second, _ = worker(client, world, "kate")
    ready_application(client, first, world.program.id, number="C-1", invoice="I-1")
    app = skill_draft(client, second, world.program.id, number="C-1", invoice="I-2")
    for doc in ("certificate", "fee_invoice"):
        upload(client, second, app["id"], doc)
    monkeypatch.setattr(subsidies, "_claimed_elsewhere", lambda *a: False)  # as if both submitted at once
    response = client.post(f"/api/v1/subsidy/applications/{app['id']}/submit", headers=bearer(second))
    assert_error(response, 409, "duplicate_claim")
    assert _get(client, second, app["id"]).get_json()["status"] == "draft"


def test_attachments_are_checked_by_content_and_size(client, app, world, monkeypatch):
    token, _ = worker(client, world, "liam")
    draft = skill_draft(client, token, world.program.id)
    fake = upload(client, token, draft["id"], "certificate", b"MZ\x90\x00 not a pdf", "certificate.pdf")
    assert_error(fake, 415, "unsupported_file_type")
    assert_error(upload(client, token, draft["id"], "certificate", b"", "empty.pdf"), 415, "unsupported_file_type")
    body = assert_error(upload(client, token, draft["id"], "passport", PDF), 422, "validation_error")
    assert "doc_type" in body["errors"]
    monkeypatch.setattr(app.extensions["unionhub"]["config"], "UPLOAD_MAX_BYTES", 50)
    assert_error(upload(client, token, draft["id"], "certificate", PDF), 413, "file_too_large")
    monkeypatch.undo()
    extra = client.post(f"/api/v1/subsidy/applications/{draft['id']}/attachments", headers=bearer(token),
                        data={"doc_type": "certificate", "file": (io.BytesIO(PDF), "a.pdf"), "colour": "red"},
                        content_type="multipart/form-data")
    assert assert_error(extra, 422, "validation_error")["errors"] == {"colour": ["不支持的字段"]}
    missing_file = client.post(f"/api/v1/subsidy/applications/{draft['id']}/attachments", headers=bearer(token),
                               data={"doc_type": "certificate"}, content_type="multipart/form-data")
    assert_error(missing_file, 422, "validation_error")
    stored = upload(client, token, draft["id"], "certificate", PDF, "../../etc/passwd.pdf").get_json()
    assert stored["filename"] == "passwd.pdf" and stored["size"] == len(PDF)
    row = db.get(SubsidyApplication, draft["id"]).attachments[0]
    folder = app.extensions["unionhub"]["config"].UPLOAD_DIR / "subsidy"
    assert os.listdir(folder) and row.storage_name in os.listdir(folder) and "passwd" not in row.storage_name
    served = client.get(f"/api/v1/subsidy/applications/{draft['id']}/attachments/{stored['id']}",
                        headers=bearer(token))
    assert served.status_code == 200 and served.data == PDF and served.mimetype == "application/pdf"
    assert served.headers["X-Content-Type-Options"] == "nosniff"


def test_attachments_and_applications_are_private(client, world):
    owner, _ = worker(client, world, "mona")
    stranger, _ = worker(client, world, "nick")
    app = ready_application(client, owner, world.program.id)
    att_id = _get(client, owner, app["id"]).get_json()["attachments"][0]["id"]
    file_url = f"/api/v1/subsidy/applications/{app['id']}/attachments/{att_id}"
    assert_error(client.get(file_url, headers=bearer(stranger)), 404, "not_found")
    assert_error(client.get(file_url), 401, "unauthorized")
    assert_error(_get(client, stranger, app["id"]), 404, "not_found")
    assert_error(client.post(f"/api/v1/subsidy/applications/{app['id']}/withdraw", headers=bearer(stranger)),
                 404, "not_found")
    assert client.get("/api/v1/subsidy/applications", headers=bearer(stranger)).get_json() == []
    staff_url = f"/api/admin/v1/subsidy/applications/{app['id']}/attachments/{att_id}"
    assert client.get(staff_url, headers=bearer(staff_login(client, "factory_officer"))).data == PDF
    assert client.get(staff_url, headers=bearer(staff_login(client, "city_reviewer"))).status_code == 200
    assert_error(client.get(staff_url, headers=bearer(staff_login(client, "west_reviewer"))), 404, "not_found")
    assert_error(client.get(staff_url, headers=bearer(owner)), 401, "invalid_token")


def test_no_input_gives_a_server_error(client, world):
    token, _ = worker(client, world, "olga")
    staff = staff_login(client, "city_admin")
    app = ready_application(client, token, world.program.id)
    huge = 2**31
    probes = [
        ("get", f"/api/v1/subsidy/programs/{huge}", None, token),
        ("get", f"/api/v1/subsidy/applications/{10**30}", None, token),
        ("post", "/api/v1/subsidy/applications", {"program_id": huge, "kind": "skill"}, token),
        ("post", "/api/v1/subsidy/applications", {"program_id": world.program.id, "kind": "skill",
                                                  "requested_fen": 10**12}, token),
        ("post", "/api/v1/subsidy/applications", {"program_id": world.program.id, "kind": "skill",
                                                  "certificate_name": "焊\x00工"}, token),
        ("post", "/api/v1/subsidy/applications", ["not", "an", "object"], token),
        ("put", "/api/v1/me", {"real_name": "张\x00三", "org_id": huge}, token),
        ("put", "/api/v1/me", {"employer": 12}, token),
        ("post", "/api/admin/v1/auth/login", {"username": "a\x00", "password": "x"}, None),
        ("post", f"/api/v1/subsidy/applications/{app['id']}/withdraw", {"reason": 5}, token),
        ("post", "/api/admin/v1/subsidy/applications/bulk-approve", {"ids": [huge, -1]}, staff),
        ("post", f"/api/admin/v1/subsidy/applications/{app['id']}/decision",
         {"decision": "approve", "amount_fen": 10**15}, staff),
        ("get", f"/api/admin/v1/subsidy/applications?org_id={huge}&program_id=-5", None, staff),
        ("get", "/api/admin/v1/subsidy/applications?date_to=0001-01-01", None, staff),  # (found by fuzzing)
        ("get", "/api/admin/v1/subsidy/applications?date_from=9999-12-31", None, staff),
        ("patch", f"/api/admin/v1/subsidy/programs/{world.program.id}", {"window_end": "9999-12-31T23:59:59-08:00"},
         staff),
        ("patch", f"/api/admin/v1/subsidy/programs/{world.program.id}", {"budget_fen": 10**12}, staff),
        ("patch", f"/api/admin/v1/subsidy/programs/{world.program.id}",
         {"eligibility": {"org_ids": [huge]}, "required_documents": {"skill": ["a\x00"]}}, staff),
        ("post", "/api/admin/v1/subsidy/programs", {"name": "x" * 500}, staff),
    ]
    for method, url, body, tok in probes:
        headers = bearer(tok) if tok else {}
        response = getattr(client, method)(url, json=body, headers=headers)
        assert 400 <= response.status_code < 500, (method, url, response.get_json())
        assert response.get_json()["message"], (method, url)
    raw = client.post("/api/v1/subsidy/applications", data="{not json", content_type="application/json",
                      headers=bearer(token))
    assert 400 <= raw.status_code < 500
    odd_name = upload(client, token, skill_draft(client, token, world.program.id, number="Z", invoice="Z")["id"],
                      "certificate", PDF, "a\x01b.pdf")
    assert odd_name.status_code == 201 and odd_name.get_json()["filename"] == "ab.pdf"


def test_official_account_progress_lines(client, world):
    from server.services.wechat_views import application_lines

    token, _ = worker(client, world, "pete")
    app = ready_application(client, token, world.program.id)
    decide(client, staff_login(client, "city_reviewer"), app["id"], decision="return", reason="请补充发票")
    lines = application_lines(db.get(SubsidyApplication, app["id"]).person)
    assert len(lines) == 1 and "技能提升】退回补充材料：请补充发票，请于" in lines[0]
