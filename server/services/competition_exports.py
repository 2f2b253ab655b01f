"""Excel exports of a competition for staff: the venue's entry list, the check-in list and the results.

Chinese headers, ID numbers masked (``mask_id_number``), no phone numbers; the
layout helper is the subsidy export's.
"""

from __future__ import annotations

import io

from openpyxl import Workbook

from server.models import ENTRY_STATUS_LABELS, Competition, EntryStatus, Staff, StaffRole
from server.services import competition_results as results
from server.services import competitions
from server.services.auth import require_role
from server.services.exports import _sheet
from server.services.profile import masked_id_number
from server.timeutil import fmt_local, local_now

KINDS = {"entries": "报名名单", "checkins": "签到表", "results": "成绩表"}
SCORE = "0.00"
VIA = {"staff": "工作人员扫码", "wechat": "公众号扫码", "miniprogram": "小程序扫码"}


def _person(entry) -> list:
    return [entry.candidate_number, entry.person.real_name, masked_id_number(entry.person),
            entry.org.name if entry.org else None]


def _entries(competition: Competition):
    entries = competitions.list_entries(competition)
    active = [e for e in entries if e.status in competitions.ACTIVE]
    active.sort(key=lambda e: (e.status != EntryStatus.CONFIRMED.value, e.candidate_number or "", e.id))
    headers = ["序号", "准考证号", "姓名", "身份证号", "所在工会", "工种", "报名状态", "报名时间"]
    rows = [[n, *_person(e), e.person.trade, ENTRY_STATUS_LABELS[EntryStatus(e.status)], fmt_local(e.created_at)]
            for n, e in enumerate(active, 1)]
    return [("报名名单", headers, rows, [None] * len(headers))]


def _checkins(competition: Competition):
    confirmed = competitions.list_entries(competition, EntryStatus.CONFIRMED.value)
    confirmed.sort(key=lambda e: (e.candidate_number or "", e.id))
    headers = ["序号", "准考证号", "姓名", "身份证号", "所在工会", "签到状态", "签到时间", "签到方式"]
    rows = [[n, *_person(e), "已签到" if e.checked_in_at else "未签到", fmt_local(e.checked_in_at),
             VIA.get(e.checked_in_via or "")] for n, e in enumerate(confirmed, 1)]
    arrived = sum(1 for e in confirmed if e.checked_in_at)
    summary = [["应到人数", len(confirmed)], ["实到人数", arrived], ["未到人数", len(confirmed) - arrived]]
    return [("签到表", headers, rows, [None] * len(headers)), ("汇总", ["项目", "人数"], summary, [None, None])]


def _results(competition: Competition):
    rows_in = results.result_rows(competition)
    judges = max((len(r["judge_scores"]) for r in rows_in), default=0)
    headers = ["名次", "准考证号", "姓名", "身份证号", "所在工会", f"理论成绩（{competition.theory_weight}%）",
               *[f"实操评委{i}" for i in range(1, judges + 1)], f"实操成绩（{competition.practical_weight}%）", "总成绩"]
    rows = []
    for r in rows_in:
        marks = [float(j["score"]) for j in r["judge_scores"]] + [None] * (judges - len(r["judge_scores"]))
        rows.append([r["rank"] if r["rank"] is not None else "缺考/成绩不全", *_person(r["entry"]),
                     _num(r["theory"]), *marks, _num(r["practical"]), _num(r["final"])])
    formats = [None] * 5 + [SCORE] * (judges + 3)
    state = results.scoring_of(competition.id)
    summary = [["竞赛名称", competition.name], ["成绩状态", results.RESULT_STATE_LABELS[state.state]],
               ["公示截止", fmt_local(state.notice_ends_at)], ["确定时间", fmt_local(state.finalized_at)],
               ["去掉最高分和最低分", "是" if state.drop_extremes else "否"]]
    return [("成绩表", headers, rows, formats), ("说明", ["项目", "内容"], summary, [None, None])]


def _num(value):
    return None if value is None else float(value)


def export_competition(staff: Staff, competition: Competition, kind: str) -> tuple[str, bytes]:
    """(filename, xlsx bytes) of ``kind``: entries | checkins | results."""
    require_role(staff, StaffRole.ORGANISER)
    wb = Workbook()
    wb.remove(wb.active)
    for title, headers, rows, formats in {"entries": _entries, "checkins": _checkins, "results": _results}[kind](
            competition):
        _sheet(wb, title, headers, rows, formats)
    wb.properties.title = f"{competition.name}{KINDS[kind]}"
    buffer = io.BytesIO()
    wb.save(buffer)
    return f"竞赛{KINDS[kind]}-{competition.id}-{local_now().strftime('%Y%m%d-%H%M')}.xlsx", buffer.getvalue()
