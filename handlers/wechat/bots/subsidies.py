"""补贴 / 申请进度: programme rules and the worker's own applications."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from server.extensions import db
from server.models import SubsidyProgram

from server.timeutil import fmt_local

from ..router import router, shared_answer

KIND_LABELS = {"degree": "学历提升", "skill": "技能提升"}


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.0f}" if fen % 100 == 0 else f"{fen / 100:,.2f}"


def _date(value: datetime) -> str:
    return fmt_local(value, "%Y年%m月%d日")


def open_programs() -> list[SubsidyProgram]:
    now = datetime.now(timezone.utc)
    return list(
        db.scalars(
            select(SubsidyProgram)
            .where(SubsidyProgram.status == "open", SubsidyProgram.window_start <= now, SubsidyProgram.window_end >= now)
            .order_by(SubsidyProgram.window_end)
        )
    )


@router.keyword("补贴", "补助", "学历提升", "技能提升", "补贴政策")
@shared_answer
def subsidy_rules_bot(ctx):
    programs = open_programs()
    if not programs:
        return "目前没有正在受理的补助项目，请关注后续通知。"
    parts = []
    for p in programs[:3]:
        kinds = "、".join(KIND_LABELS.get(k, k) for k in p.kinds)
        places_left = max(0, p.max_people - p.approved_people)
        parts.append(
            f"【{p.name}】\n类别：{kinds}\n每人最高：{_yuan(p.per_person_cap_fen)}元\n"
            f"受理时间：{_date(p.window_start)}至{_date(p.window_end)}\n剩余名额：{places_left}人，"
            f"剩余资金：{_yuan(max(0, p.budget_fen - p.committed_fen))}元"
        )
    return "\n\n".join(parts) + "\n\n申请请打开“职工之家”小程序“补助申请”。回复“申请进度”查询您的申请。"


@router.keyword("申请进度", "进度", "我的申请", "补贴进度")
def subsidy_progress_bot(ctx):
    from server.services.wechat_views import application_lines

    return own_records(ctx, application_lines, "申请进度", "您还没有补助申请。回复“补贴”查看可申请的项目。", "您的补助申请：")


def own_records(ctx, lines_of, what: str, empty: str, heading: str) -> str:
    """A bound worker's own records as lines, or what to do first."""
    person = ctx.person
    if person is None or not person.bound:
        return f"请先回复“绑定”关联会员信息，再查询{what}。"
    lines = lines_of(person)
    return heading + "\n" + "\n".join(lines) if lines else empty
