"""Excel exports for staff: a programme's applications with masked ID numbers, and a money summary."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from server.extensions import db
from server.models import APPLICATION_STATUS_LABELS, SUBSIDY_KIND_LABELS, ApplicationStatus, Staff, SubsidyKind
from server.services import subsidies
from server.timeutil import fmt_local, local_now

YUAN = "0.00"

#: (header, value of one application's staff view, number format)
COLUMNS = [
    ("申请编号", lambda v: v["id"], None),
    ("姓名", lambda v: v["applicant"]["real_name"], None),
    ("身份证号", lambda v: v["applicant"]["id_number_masked"], None),
    ("手机号", lambda v: v["applicant"]["phone_masked"], None),
    ("所在工会", lambda v: v["applicant"]["org_name"], None),
    ("补助类别", lambda v: v["kind_label"], None),
    ("学校/证书名称", lambda v: v["school"] or v["certificate_name"], None),
    ("专业/证书等级", lambda v: v["major"] or v["certificate_level"], None),
    ("证书编号", lambda v: v["certificate_number"], None),
    ("发票号码", lambda v: v["invoice_number"], None),
    ("申请金额（元）", lambda v: _yuan(v["requested_fen"]), YUAN),
    ("核定金额（元）", lambda v: _yuan(v["approved_fen"]), YUAN),
    ("状态", lambda v: v["status_label"], None),
    ("提交时间", lambda v: fmt_local(v["submitted_at"]), None),
    ("审核时间", lambda v: fmt_local(v["decided_at"]), None),
    ("发放时间", lambda v: fmt_local(v["paid_at"]), None),
    ("支付凭证号", lambda v: v["payment_reference"], None),
    ("说明", lambda v: v["reason"], None),
]


def _yuan(fen: int | None) -> float | None:
    return None if fen is None else fen / 100


def _sheet(wb: Workbook, title: str, headers: list[str], rows, formats: list[str | None]):
    ws = wb.create_sheet(title)
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(row)
        for cell, fmt in zip(ws[ws.max_row], formats):
            if fmt:
                cell.number_format = fmt
    for i, header in enumerate(headers, 1):
        ws.column_dimensions[get_column_letter(i)].width = max(10, len(header) * 2 + 2)
    ws.freeze_panes = "A2"
    return ws


def export_program_applications(staff: Staff, program_id: int, **filters) -> tuple[str, bytes]:
    """(filename, xlsx bytes): the programme's applications in the staff member's subtree, then a summary."""
    program = subsidies.get_program(program_id, staff)
    stmt = subsidies.staff_applications_query(staff, program_id=program.id, **filters)
    views = [subsidies.application_view(a, detail=False, for_staff=True) for a in db.scalars(stmt)]
    wb = Workbook()
    wb.remove(wb.active)
    _sheet(wb, "申请明细", [c[0] for c in COLUMNS], ([get(v) for _, get, _ in COLUMNS] for v in views),
           [c[2] for c in COLUMNS])
    money = [
        ("预算总额", program.budget_fen), ("已核准金额", program.committed_fen), ("已发放金额", program.paid_fen),
        ("剩余可用金额", program.budget_fen - program.committed_fen),
        ("核准未发放金额", program.committed_fen - program.paid_fen),
    ]
    summary = [("项目名称", program.name, None)] + [(k, _yuan(v), YUAN) for k, v in money] + [
        ("名额", program.max_people, None), ("已核准人数", program.approved_people, None),
        ("剩余名额", program.max_people - program.approved_people, None),
        ("本表申请数", len(views), None),
        ("本表核定金额合计", _yuan(sum(v["approved_fen"] or 0 for v in views)), YUAN),
    ]
    for status in ApplicationStatus:
        count = sum(1 for v in views if v["status"] == status.value)
        if count:
            summary.append((f"状态：{APPLICATION_STATUS_LABELS[status]}", count, None))
    ws = _sheet(wb, "汇总", ["项目", "数值"], ([k, v] for k, v, _ in summary), [None, None])
    for row, (_, _, fmt) in zip(ws.iter_rows(min_row=2), summary):
        row[1].number_format = fmt or "General"
    kinds = "、".join(SUBSIDY_KIND_LABELS[SubsidyKind(k)] for k in program.kinds)
    wb.properties.title = f"{program.name}（{kinds}）申请明细"
    buffer = io.BytesIO()
    wb.save(buffer)
    stamp = local_now().strftime("%Y%m%d-%H%M")
    return f"补助申请-{program.id}-{stamp}.xlsx", buffer.getvalue()
