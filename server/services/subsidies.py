"""Study and skill subsidies: programmes, applications, review, payment.

State machine of an application (``ApplicationStatus``)::

    draft ──submit──▶ submitted ──approve (level 1 of 2)──▶ under_review ──approve──▶ approved ──paid──▶ paid
      │                  │  ╲______________ approve (last level) ____________________╱   │  ╲failed▶ payment_failed ─paid─▶ paid
      │                  ├──return──▶ returned ──submit──▶ (back to the level that returned it)
      │                  │               └── deadline passes (sweep) ──▶ expired
      │                  └──reject──▶ rejected
      └── draft / submitted / under_review / returned ──withdraw──▶ withdrawn

Any other move answers 409 ``invalid_state`` with ``current_state``.

Limits are held by the database: approving locks the person's
:class:`SubsidyAllowance` row and bumps it with a conditional UPDATE (the
per-person cap), then bumps the programme's counters with one conditional
UPDATE (money and places), so concurrent approvals can never overshoot; the
CHECK constraints on ``subsidy_programs`` are the last line.  Certificate and
invoice numbers are unique among live applications (a partial unique index).
Every transition writes an :class:`ApplicationEvent` (the worker's history)
and an audit row, and enqueues the worker's notification after commit.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select, update

from server.errors import Conflict, Forbidden, NotFound, ServiceError
from server.extensions import after_commit, db
from server.models import (
    APPLICATION_STATUS_LABELS,
    SUBSIDY_KIND_LABELS,
    WORKER_CATEGORY_LABELS,
    ApplicationAttachment,
    ApplicationEvent,
    ApplicationStatus,
    Organisation,
    Person,
    Staff,
    StaffRole,
    SubsidyAllowance,
    SubsidyApplication,
    SubsidyKind,
    SubsidyProgram,
)
from server.security import mask_phone
from server.timeutil import CHINA
from server.services.audit import actor_ref, record_audit
from server.services.auth import in_scope, require_in_scope, require_role, scope_filter
from server.services.profile import masked_id_number
from server.services.txn import begin_savepoint, insert_ignore, savepoint_or

S = ApplicationStatus
EDITABLE = {S.DRAFT.value, S.RETURNED.value}
WITHDRAWABLE = {S.DRAFT.value, S.SUBMITTED.value, S.UNDER_REVIEW.value, S.RETURNED.value}
REVIEWABLE = {S.SUBMITTED.value, S.UNDER_REVIEW.value}
#: Transitions the worker hears about (a notification job after commit).
NOTIFIED = {S.SUBMITTED.value, S.RETURNED.value, S.APPROVED.value, S.REJECTED.value, S.PAID.value,
            S.PAYMENT_FAILED.value, S.EXPIRED.value}
DEFAULT_RETURN_DAYS = 14
MAX_ATTACHMENTS = 20
#: Content sniffing: (magic bytes, content type, extension).
FILE_TYPES = ((b"\xff\xd8\xff", "image/jpeg", ".jpg"), (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
              (b"%PDF-", "application/pdf", ".pdf"))
DOCUMENT_LABELS = {
    "admission_notice_or_diploma": "录取通知书或毕业证书",
    "tuition_invoice": "学费发票",
    "certificate": "职业技能等级证书或职业资格证书",
    "fee_invoice": "培训或鉴定费用发票",
    "other": "其他材料",
}
FIELD_LABELS = {
    "school": "学校", "major": "专业", "study_level": "学历层次", "certificate_name": "证书名称",
    "certificate_level": "证书等级", "certificate_number": "证书编号", "invoice_number": "发票号码",
}
REQUIRED_FIELDS = {SubsidyKind.DEGREE.value: ("school", "major", "study_level"),
                   SubsidyKind.SKILL.value: ("certificate_name", "certificate_level", "certificate_number")}
APPLICATION_FIELDS = ("school", "major", "study_level", "certificate_name", "certificate_level",
                      "certificate_number", "invoice_number", "note", "requested_fen")
PROGRAM_FIELDS = ("name", "description", "kinds", "eligibility", "required_documents", "window_start", "window_end",
                  "per_person_cap_fen", "max_people", "budget_fen", "review_levels", "status")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def yuan(fen: int | None) -> str:
    return f"{(fen or 0) / 100:.2f}"


def invalid_input(field: str, message: str) -> ServiceError:
    """A 422 like the schemas' own, for rules a schema cannot see (they need the database)."""
    return ServiceError("validation_error", "提交的信息有误，请检查后重试", 422, errors={field: [message]})


def invalid_state(app: SubsidyApplication, message: str = "当前状态不允许此操作") -> Conflict:
    return Conflict("invalid_state", message, current_state=app.status)


# -- programmes ------------------------------------------------------------------------------------

def eligibility_text(rules: dict) -> list[str]:
    """The programme's eligibility rules in Chinese, one line each."""
    lines = []
    if rules.get("member_required"):
        lines.append("工会会员")
    if rules.get("min_membership_months"):
        lines.append(f"入会满{rules['min_membership_months']}个月")
    if rules.get("worker_categories"):
        lines.append("职工类别：" + "、".join(WORKER_CATEGORY_LABELS.get(c, c) for c in rules["worker_categories"]))
    if rules.get("org_ids"):
        names = db.scalars(select(Organisation.name).where(Organisation.id.in_(rules["org_ids"])))
        lines.append("所在工会：" + "、".join(names) + "（含下属工会）")
    return lines


def program_view(program: SubsidyProgram) -> dict:
    view = {name: getattr(program, name) for name in PROGRAM_FIELDS}
    view.update(
        id=program.id, org_id=program.org_id, org_name=program.org.name,
        kind_labels={k: SUBSIDY_KIND_LABELS[SubsidyKind(k)] for k in program.kinds},
        eligibility_text=eligibility_text(program.eligibility or {}),
        required_document_labels={d: DOCUMENT_LABELS.get(d, d) for docs in (program.required_documents or {}).values()
                                  for d in docs},
        committed_fen=program.committed_fen, paid_fen=program.paid_fen, approved_people=program.approved_people,
        budget_left_fen=program.budget_fen - program.committed_fen,
        places_left=program.max_people - program.approved_people,
        accepting=_accepting(program),
    )
    return view


def _accepting(program: SubsidyProgram) -> bool:
    return program.status == "open" and program.window_start <= _now() <= program.window_end


def list_programs(staff: Staff | None = None) -> list[SubsidyProgram]:
    """Open programmes for workers; for staff, every programme their organisation runs or sees."""
    stmt = select(SubsidyProgram).order_by(SubsidyProgram.window_start.desc(), SubsidyProgram.id)
    if staff is None:
        stmt = stmt.where(SubsidyProgram.status == "open")
    return [p for p in db.scalars(stmt) if staff is None or _visible_to(staff, p)]


def _visible_to(staff: Staff, program: SubsidyProgram) -> bool:
    """Staff see the programmes run at or above their organisation (they review for them) or below it."""
    return in_scope(staff, program.org) or staff.org.is_within(program.org)


def get_program(program_id: int, staff: Staff | None = None) -> SubsidyProgram:
    program = db.get(SubsidyProgram, program_id)
    if program is None or (staff is None and program.status == "draft") or (staff and not _visible_to(staff, program)):
        raise NotFound("找不到该补助项目")
    return program


def _check_program(program: SubsidyProgram) -> None:
    errors: dict[str, list[str]] = {}
    if program.window_start >= program.window_end:
        errors["window_end"] = ["申请截止时间应晚于开始时间"]
    if program.budget_fen < program.committed_fen:
        errors["budget_fen"] = [f"预算不能低于已核准金额{yuan(program.committed_fen)}元"]
    if program.max_people < program.approved_people:
        errors["max_people"] = [f"名额不能少于已核准人数{program.approved_people}"]
    if set(program.required_documents or {}) - set(program.kinds):
        errors["required_documents"] = ["材料要求只能针对本项目提供的补助类别"]
    if errors:
        raise ServiceError("validation_error", "提交的信息有误，请检查后重试", 422, errors=errors)


def save_program(staff: Staff, data: dict, program: SubsidyProgram | None = None) -> SubsidyProgram:
    """Create (``program=None``) or edit a programme; admins only, within their organisation."""
    require_role(staff)
    if program is None:
        org = db.get(Organisation, data.pop("org_id", None) or staff.org_id)
        require_in_scope(staff, org, "找不到该组织")
        program = SubsidyProgram(org=org, org_id=org.id, committed_fen=0, approved_people=0, paid_fen=0)
    elif not in_scope(staff, program.org):
        raise Forbidden("只能修改本组织及下属组织的补助项目")
    before = program.status if program.id else None
    # The CHECK constraints catch an approval that raced past the budget or places check.
    with savepoint_or(Conflict("program_changed", "已核准的金额或人数刚刚发生变化，请刷新后重试")), db.no_autoflush:
        for name in PROGRAM_FIELDS:
            if name in data:
                setattr(program, name, data[name])
        _check_program(program)
        db.add(program)
    record_audit(staff, "subsidy_program.saved", "subsidy_program", program.id, from_state=before,
                 to_state=program.status, org_id=program.org_id, details={"fields": sorted(data)})
    return program


# -- applications: views and access ---------------------------------------------------------------

def _event_view(event: ApplicationEvent) -> dict:
    return {"at": event.at, "action": event.action, "from_status": event.from_status, "to_status": event.to_status,
            "status_label": APPLICATION_STATUS_LABELS[S(event.to_status)], "review_level": event.review_level,
            "amount_fen": event.amount_fen, "reason": event.reason, "actor_type": event.actor_type}


def attachment_view(att: ApplicationAttachment) -> dict:
    return {"id": att.id, "doc_type": att.doc_type, "doc_label": DOCUMENT_LABELS.get(att.doc_type, att.doc_type),
            "filename": att.filename, "content_type": att.content_type, "size": att.size, "sha256": att.sha256,
            "uploaded_at": att.uploaded_at}


def applicant_view(person: Person) -> dict:
    """A person as staff see them in lists: masked phone and ID number."""
    return {"id": person.id, "real_name": person.real_name, "phone_masked": mask_phone(person.phone),
            "id_number_masked": masked_id_number(person), "org_id": person.org_id,
            "org_name": person.org.name if person.org else None, "worker_category": person.worker_category,
            "is_member": person.is_member}


def application_view(app: SubsidyApplication, *, detail: bool = True, for_staff: bool = False) -> dict:
    view = {name: getattr(app, name) for name in APPLICATION_FIELDS}
    view.update(
        id=app.id, program_id=app.program_id, program_name=app.program.name, kind=app.kind,
        kind_label=SUBSIDY_KIND_LABELS[SubsidyKind(app.kind)], status=app.status,
        status_label=APPLICATION_STATUS_LABELS[S(app.status)], review_level=app.review_level,
        review_levels=app.program.review_levels, org_id=app.org_id, recommended_fen=app.recommended_fen,
        approved_fen=app.approved_fen, reason=app.reason, return_deadline=app.return_deadline,
        payment_reference=app.payment_reference, created_at=app.created_at, submitted_at=app.submitted_at,
        decided_at=app.decided_at, paid_at=app.paid_at,
    )
    if detail:
        view.update(attachments=[attachment_view(a) for a in app.attachments],
                    history=[_event_view(e) for e in app.events],
                    missing=check_application(app) if app.status in EDITABLE else [])
    if for_staff:
        view["applicant"] = applicant_view(app.person)
    return view


def _load(app_id: int, lock: bool = False) -> SubsidyApplication | None:
    stmt = select(SubsidyApplication).where(SubsidyApplication.id == app_id)
    if lock:  # serialises decisions on one application (a no-op on SQLite, which serialises writers)
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return db.scalar(stmt)


def get_person_application(person: Person, app_id: int, lock: bool = False) -> SubsidyApplication:
    app = _load(app_id, lock)
    if app is None or app.person_id != person.id:
        raise NotFound("找不到该申请")
    return app


def get_staff_application(staff: Staff, app_id: int, lock: bool = False) -> SubsidyApplication:
    app = _load(app_id, lock)
    if app is None or app.status == S.DRAFT.value:  # a draft is the worker's own business
        raise NotFound("找不到该申请")
    require_in_scope(staff, app.org, "找不到该申请")
    return app


def list_person_applications(person: Person) -> list[SubsidyApplication]:
    return list(db.scalars(select(SubsidyApplication).where(SubsidyApplication.person_id == person.id)
                           .order_by(SubsidyApplication.id.desc())))


def staff_applications_query(staff: Staff, *, program_id=None, status=None, org_id=None, date_from=None,
                             date_to=None):
    """Applications in the staff member's subtree, filtered; dates bound ``submitted_at`` (inclusive days)."""
    stmt = (select(SubsidyApplication).join(Organisation, SubsidyApplication.org_id == Organisation.id)
            .where(scope_filter(staff), SubsidyApplication.status != S.DRAFT.value)
            .order_by(SubsidyApplication.id))
    if program_id:
        stmt = stmt.where(SubsidyApplication.program_id == program_id)
    if status:
        stmt = stmt.where(SubsidyApplication.status == status)
    if org_id:
        org = db.get(Organisation, org_id)
        stmt = stmt.where(Organisation.path.startswith(org.path if org else "/none/"))
    if date_from:
        stmt = stmt.where(SubsidyApplication.submitted_at >= _day_start(date_from))
    if date_to:
        stmt = stmt.where(SubsidyApplication.submitted_at < _day_start(date_to) + timedelta(days=1))
    return stmt


def _day_start(day) -> datetime:
    """Midnight of ``day`` in Asia/Shanghai, as UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=CHINA).astimezone(timezone.utc)


# -- applications: the worker's side --------------------------------------------------------------

def _claim_key(number: str | None) -> str | None:
    key = re.sub(r"[\s\-_/.]", "", number or "").upper()
    return key or None


def _apply_fields(app: SubsidyApplication, data: dict) -> None:
    for name in APPLICATION_FIELDS:
        if name in data:
            value = data[name]
            setattr(app, name, value.strip() or None if isinstance(value, str) else value)
    app.certificate_key = _claim_key(app.certificate_number)
    app.invoice_key = _claim_key(app.invoice_number)


def create_application(person: Person, data: dict) -> SubsidyApplication:
    program = get_program(data["program_id"])
    if not _accepting(program):
        raise Conflict("program_not_open", "该补助项目当前不在申请期内")
    if data["kind"] not in program.kinds:
        raise invalid_input("kind", "本项目不提供该补助类别")
    app = SubsidyApplication(program=program, program_id=program.id, person=person, person_id=person.id,
                             org_id=person.org_id, kind=data["kind"], status=S.DRAFT.value, review_level=1,
                             requested_fen=0)
    _apply_fields(app, data)
    db.add(app)
    db.flush()
    _record(app, person, "create", None, reason=None)
    return app


def update_application(person: Person, app: SubsidyApplication, data: dict) -> SubsidyApplication:
    if app.status not in EDITABLE:
        raise invalid_state(app, "只有草稿或退回补充材料的申请可以修改")
    _apply_fields(app, data)
    db.flush()
    record_audit(person, "subsidy_application.edited", "subsidy_application", app.id, org_id=app.org_id,
                 details={"fields": sorted(data)})
    return app


def _problem(code: str, message: str, field: str = "_application") -> dict:
    return {"code": code, "field": field, "message": message}


def _approved_total(program_id: int, person_id: int) -> int:
    return db.scalar(select(SubsidyAllowance.approved_fen).where(
        SubsidyAllowance.program_id == program_id, SubsidyAllowance.person_id == person_id)) or 0


def _claimed_elsewhere(app: SubsidyApplication, column) -> bool:
    key = getattr(app, column.key)
    if not key:
        return False
    return db.scalar(select(func.count()).select_from(SubsidyApplication).where(
        column == key, SubsidyApplication.id != app.id,
        SubsidyApplication.status.not_in([S.DRAFT.value, S.WITHDRAWN.value, S.REJECTED.value, S.EXPIRED.value]))) > 0


def _eligibility_problems(program: SubsidyProgram, person: Person) -> list[dict]:
    rules = program.eligibility or {}
    problems = []
    if not person.bound:
        problems.append(_problem("profile_incomplete", "请先完善个人信息（姓名、身份证号、所在企业工会）", "profile"))
    if rules.get("member_required") and not person.is_member:
        problems.append(_problem("not_member", "本项目仅限工会会员申请", "profile"))
    months = rules.get("min_membership_months")
    if months and person.is_member and (person.member_since is None or
                                        person.member_since > (_now() - timedelta(days=30.4 * months)).date()):
        problems.append(_problem("membership_too_short", f"入会满{months}个月后方可申请", "profile"))
    categories = rules.get("worker_categories")
    if categories and person.worker_category not in categories:
        allowed = "、".join(WORKER_CATEGORY_LABELS.get(c, c) for c in categories)
        problems.append(_problem("category_not_eligible", f"本项目资助对象为：{allowed}", "worker_category"))
    org_ids = rules.get("org_ids")
    if org_ids and not (person.org and any(person.org.is_within(o) for o in
                                           db.scalars(select(Organisation).where(Organisation.id.in_(org_ids))))):
        problems.append(_problem("org_not_eligible", "您所在的工会不在本项目范围内", "org_id"))
    return problems


def check_application(app: SubsidyApplication) -> list[dict]:
    """Everything that stops ``app`` from being submitted now, as ``{"code", "field", "message"}``."""
    program, person = app.program, app.person
    problems = [] if _accepting(program) else [_problem("program_not_open", "该补助项目当前不在申请期内")]
    problems += _eligibility_problems(program, person)
    for name in REQUIRED_FIELDS[app.kind]:
        if not getattr(app, name):
            problems.append(_problem("missing_field", f"请填写{FIELD_LABELS[name]}", name))
    documents = (program.required_documents or {}).get(app.kind, [])
    if any(d.endswith("invoice") for d in documents) and not app.invoice_number:
        problems.append(_problem("missing_field", "请填写发票号码", "invoice_number"))
    uploaded = {a.doc_type for a in app.attachments}
    for doc in documents:
        if doc not in uploaded:
            problems.append(_problem("missing_document", f"请上传{DOCUMENT_LABELS.get(doc, doc)}", "attachments"))
    left = program.per_person_cap_fen - _approved_total(program.id, person.id)
    if app.requested_fen <= 0:
        problems.append(_problem("amount_invalid", "申请金额应大于0", "requested_fen"))
    elif app.requested_fen > left:
        problems.append(_problem("exceeds_cap", f"超过个人补助上限，本项目您最多还可申请{yuan(max(left, 0))}元",
                                 "requested_fen"))
    if _claimed_elsewhere(app, SubsidyApplication.certificate_key):
        problems.append(_problem("duplicate_certificate", "该证书编号已被申请过补助", "certificate_number"))
    if _claimed_elsewhere(app, SubsidyApplication.invoice_key):
        problems.append(_problem("duplicate_invoice", "该发票号码已被申请过补助", "invoice_number"))
    return problems


def submit_application(person: Person, app: SubsidyApplication) -> SubsidyApplication:
    if app.status not in EDITABLE:
        raise invalid_state(app)
    if app.status == S.RETURNED.value and app.return_deadline and app.return_deadline < _now():
        raise invalid_state(app, "补充材料期限已过，该申请已失效")
    app.org_id = person.org_id
    problems = check_application(app)
    if problems:
        errors: dict[str, list[str]] = {}
        for p in problems:
            errors.setdefault(p["field"], []).append(p["message"])
        raise ServiceError("not_submittable", "申请还不能提交，请按提示修改后再提交", 422, errors=errors,
                           problems=problems)
    duplicate = Conflict("duplicate_claim", "该证书编号或发票号码已被申请过补助")
    with savepoint_or(duplicate):  # the partial unique indexes decide races between two submissions
        app.submitted_at = _now()
        app.return_deadline = None
        _transition(app, S.UNDER_REVIEW if app.review_level == 2 else S.SUBMITTED, person, "submit")
    return app


def withdraw_application(person: Person, app: SubsidyApplication, reason: str | None = None) -> SubsidyApplication:
    if app.status not in WITHDRAWABLE:
        raise invalid_state(app, "该申请已审结，不能撤回")
    _transition(app, S.WITHDRAWN, person, "withdraw", reason=reason)
    return app


# -- attachments -----------------------------------------------------------------------------------

def _upload_dir() -> Path:
    return Path(current_app.extensions["unionhub"]["config"].UPLOAD_DIR) / "subsidy"


def sniff(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the first bytes, or None for anything but JPEG, PNG, PDF."""
    for magic, content_type, ext in FILE_TYPES:
        if head.startswith(magic):
            return content_type, ext
    return None


def add_attachment(person: Person, app: SubsidyApplication, doc_type: str, filename: str | None,
                   stream) -> ApplicationAttachment:
    if app.status not in EDITABLE:
        raise invalid_state(app, "只有草稿或退回补充材料的申请可以上传材料")
    allowed = set((app.program.required_documents or {}).get(app.kind, [])) | {"other"}
    if doc_type not in allowed:
        raise invalid_input("doc_type", "材料类型应为：" + "、".join(sorted(allowed)))
    if len(app.attachments) >= MAX_ATTACHMENTS:
        raise Conflict("too_many_attachments", f"每份申请最多上传{MAX_ATTACHMENTS}个文件")
    limit = current_app.extensions["unionhub"]["config"].UPLOAD_MAX_BYTES
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ServiceError("file_too_large", f"文件不能超过{limit // (1024 * 1024) or 1}MB", 413)
    kind = sniff(data)
    if not data or kind is None:
        raise ServiceError("unsupported_file_type", "仅支持JPG、PNG图片或PDF文件", 415)
    storage_name = secrets.token_hex(16) + kind[1]
    folder = _upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (storage_name + ".part")
    tmp.write_bytes(data)
    tmp.replace(folder / storage_name)
    name = re.sub(r"[\x00-\x1f\x7f]", "", os.path.basename((filename or "").replace("\\", "/"))).strip()[:200]
    name = name or "upload" + kind[1]
    att = ApplicationAttachment(application_id=app.id, doc_type=doc_type, filename=name, content_type=kind[0],
                                size=len(data), sha256=hashlib.sha256(data).hexdigest(), storage_name=storage_name)
    app.attachments.append(att)
    db.flush()
    record_audit(person, "subsidy_application.attachment_added", "subsidy_application", app.id, org_id=app.org_id,
                 details={"attachment_id": att.id, "doc_type": doc_type, "sha256": att.sha256})
    return att


def get_attachment(app: SubsidyApplication, attachment_id: int) -> tuple[ApplicationAttachment, Path]:
    """The attachment of ``app`` (access already checked through the application) and its file."""
    att = next((a for a in app.attachments if a.id == attachment_id), None)
    path = _upload_dir() / att.storage_name if att else None
    if att is None or not path.is_file():
        raise NotFound("找不到该文件")
    return att, path


def delete_attachment(person: Person, app: SubsidyApplication, attachment_id: int) -> None:
    if app.status not in EDITABLE:
        raise invalid_state(app, "只有草稿或退回补充材料的申请可以删除材料")
    att, path = get_attachment(app, attachment_id)
    app.attachments.remove(att)
    db.delete(att)
    db.flush()
    after_commit(db(), path.unlink, missing_ok=True)
    record_audit(person, "subsidy_application.attachment_deleted", "subsidy_application", app.id,
                 org_id=app.org_id, details={"attachment_id": attachment_id, "sha256": att.sha256})


# -- review and payment ----------------------------------------------------------------------------

def _at_program_level(staff: Staff, program: SubsidyProgram) -> bool:
    """The final review and payment belong to the organisation running the programme (or above it)."""
    return program.org.is_within(staff.org)


def decide_application(staff: Staff, app: SubsidyApplication, decision: str, *, amount_fen: int | None = None,
                       reason: str | None = None, return_deadline: datetime | None = None) -> SubsidyApplication:
    """``approve`` (at the last level: reserve money and a place), ``reject`` or ``return`` an application."""
    require_role(staff, StaffRole.REVIEWER, StaffRole.OFFICER)
    if app.status not in REVIEWABLE:
        raise invalid_state(app, "该申请当前不在待审核状态")
    program = app.program
    final = app.review_level >= program.review_levels
    if final and not _at_program_level(staff, program):
        raise Forbidden(f"该申请需由{program.org.name}终审", code="review_level_forbidden")
    if decision in ("reject", "return") and not (reason or "").strip():
        raise invalid_input("reason", "请填写原因")
    if decision == "reject":
        app.reason, app.decided_at = reason, _now()
        _transition(app, S.REJECTED, staff, "reject", reason=reason)
    elif decision == "return":
        deadline = return_deadline or _now() + timedelta(days=DEFAULT_RETURN_DAYS)
        if deadline <= _now():
            raise invalid_input("return_deadline", "补充材料期限应晚于当前时间")
        app.reason, app.return_deadline = reason, deadline
        _transition(app, S.RETURNED, staff, "return", reason=reason)
    else:
        amount = amount_fen or app.recommended_fen or app.requested_fen
        if not 0 < amount <= app.requested_fen:
            raise ServiceError("amount_invalid", f"核定金额应大于0且不超过申请金额{yuan(app.requested_fen)}元", 422)
        if not final:
            app.recommended_fen, app.review_level = amount, 2
            _transition(app, S.UNDER_REVIEW, staff, "approve_first_level", reason=reason, amount=amount)
        else:
            reserve_funds(app, amount)
            app.approved_fen, app.decided_at = amount, _now()
            _transition(app, S.APPROVED, staff, "approve", reason=reason, amount=amount)
    return app


def reserve_funds(app: SubsidyApplication, amount: int) -> None:
    """Reserve ``amount`` and (for a person's first approval) a place, or raise without changing anything.

    Order of locks: the person's allowance row, then the programme row (one
    conditional UPDATE), so concurrent approvals queue instead of deadlocking.
    """
    program = app.program
    insert_ignore(SubsidyAllowance.__table__, {"program_id": program.id, "person_id": app.person_id, "approved_fen": 0},
                  ["program_id", "person_id"])
    allowance = db.scalar(select(SubsidyAllowance).where(
        SubsidyAllowance.program_id == program.id, SubsidyAllowance.person_id == app.person_id)
        .with_for_update().execution_options(populate_existing=True))
    bumped = db.execute(
        update(SubsidyAllowance)
        .where(SubsidyAllowance.id == allowance.id,
               SubsidyAllowance.approved_fen + amount <= program.per_person_cap_fen)
        .values(approved_fen=SubsidyAllowance.approved_fen + amount)
        .execution_options(synchronize_session=False))
    if bumped.rowcount != 1:
        raise Conflict("cap_exceeded", f"超过个人补助上限{yuan(program.per_person_cap_fen)}元"
                                       f"（该职工在本项目已核准{yuan(allowance.approved_fen)}元）")
    new_person = 1 if allowance.approved_fen == 0 else 0
    reserved = db.execute(
        update(SubsidyProgram)
        .where(SubsidyProgram.id == program.id,
               SubsidyProgram.committed_fen + amount <= SubsidyProgram.budget_fen,
               SubsidyProgram.approved_people + new_person <= SubsidyProgram.max_people)
        .values(committed_fen=SubsidyProgram.committed_fen + amount,
                approved_people=SubsidyProgram.approved_people + new_person)
        .execution_options(synchronize_session=False))
    db.expire(allowance)
    db.expire(program, ["committed_fen", "approved_people"])
    if reserved.rowcount != 1:
        if program.committed_fen + amount > program.budget_fen:
            raise Conflict("budget_exhausted", f"补助资金不足（剩余{yuan(program.budget_fen - program.committed_fen)}元）")
        raise Conflict("places_exhausted", "补助名额已满")


def record_payment(staff: Staff, app: SubsidyApplication, result: str, *, reference: str | None = None,
                   reason: str | None = None) -> SubsidyApplication:
    require_role(staff, StaffRole.FINANCE)
    if app.status not in (S.APPROVED.value, S.PAYMENT_FAILED.value) or (
            result == "failed" and app.status == S.PAYMENT_FAILED.value):
        raise invalid_state(app, "该申请当前不能登记发放结果")
    if not _at_program_level(staff, app.program):
        raise Forbidden(f"补助由{app.program.org.name}发放", code="review_level_forbidden")
    if result == "paid":
        if not (reference or "").strip():
            raise invalid_input("reference", "请填写支付凭证号")
        db.execute(update(SubsidyProgram).where(SubsidyProgram.id == app.program_id)
                   .values(paid_fen=SubsidyProgram.paid_fen + app.approved_fen)
                   .execution_options(synchronize_session=False))
        db.expire(app.program, ["paid_fen"])
        app.payment_reference, app.paid_at = reference.strip(), _now()
        _transition(app, S.PAID, staff, "pay", amount=app.approved_fen)
    else:
        if not (reason or "").strip():
            raise invalid_input("reason", "请填写失败原因")
        app.reason = reason
        _transition(app, S.PAYMENT_FAILED, staff, "payment_failed", reason=reason)
    return app


def bulk_approve(staff: Staff, ids: list[int], reason: str | None = None) -> dict:
    """Approve each application that fits (each in its own savepoint); report each that does not."""
    approved, refused = [], []
    for app_id in dict.fromkeys(ids):
        try:
            with begin_savepoint():
                app = decide_application(staff, get_staff_application(staff, app_id, lock=True), "approve",
                                         reason=reason)
            approved.append({"id": app.id, "status": app.status, "approved_fen": app.approved_fen})
        except ServiceError as exc:
            refused.append({"id": app_id, "code": exc.code, "message": exc.message, **exc.extra})
    return {"approved": approved, "refused": refused}


# -- history, audit, notifications -----------------------------------------------------------------

def _record(app: SubsidyApplication, actor, action: str, from_status: str | None, *, reason: str | None = None,
            amount: int | None = None) -> ApplicationEvent:
    actor_type, actor_id = actor_ref(actor)
    event = ApplicationEvent(application_id=app.id, actor_type=actor_type, actor_id=actor_id, action=action,
                             from_status=from_status, to_status=app.status, review_level=app.review_level,
                             amount_fen=amount, reason=reason)
    app.events.append(event)
    db.flush()
    record_audit(actor, f"subsidy_application.{action}", "subsidy_application", app.id, from_state=from_status,
                 to_state=app.status, reason=reason, org_id=app.org_id,
                 details={"amount_fen": amount} if amount is not None else None)
    return event


def _transition(app: SubsidyApplication, to: S, actor, action: str, *, reason: str | None = None,
                amount: int | None = None) -> ApplicationEvent:
    from_status, app.status = app.status, to.value
    event = _record(app, actor, action, from_status, reason=reason, amount=amount)
    if to.value in NOTIFIED:
        notify(app.id, to.value, str(event.id))
    return event


def notify(app_id: int, status: str, marker: str) -> None:
    """Enqueue the worker's notification after commit (the job writes the inbox row, idempotently)."""
    from jobs import queues
    from jobs.notifications import notify_application

    queues.enqueue_after_commit(notify_application, app_id, status, marker, queue=queues.HIGH,
                                job_id=f"notify-subsidy-{app_id}-{status}-{marker}")


def expire_returned(now: datetime | None = None) -> list[int]:
    """Expire returned applications whose deadline passed (system actor); answers their ids."""
    now = now or _now()
    expired = []
    for app in db.scalars(select(SubsidyApplication).where(
            SubsidyApplication.status == S.RETURNED.value, SubsidyApplication.return_deadline < now)
            .with_for_update(skip_locked=True)):
        _transition(app, S.EXPIRED, None, "expire", reason="逾期未补充材料")
        expired.append(app.id)
    return expired


def remind_expiring(within: timedelta = timedelta(hours=48), now: datetime | None = None) -> list[int]:
    """Enqueue "about to expire" reminders for returned applications (deduplicated per deadline)."""
    now = now or _now()
    apps = db.scalars(select(SubsidyApplication).where(
        SubsidyApplication.status == S.RETURNED.value, SubsidyApplication.return_deadline >= now,
        SubsidyApplication.return_deadline < now + within))
    ids = []
    for app in apps:
        notify(app.id, "expiring", app.return_deadline.strftime("%Y%m%d%H%M"))
        ids.append(app.id)
    return ids
