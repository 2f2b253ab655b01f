"""竞赛 / 报名: open competitions, the worker's entries, and a competition's sign-up QR code."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from server.extensions import db
from server.models import COMPETITION_LEVEL_LABELS, Competition, CompetitionLevel
from server.services import people
from server.timeutil import fmt_local

from ..router import router, shared_answer
from .follow import WELCOME


def _places_left(c: Competition) -> int:
    from server.services.wechat_views import competition_places_left

    return competition_places_left(c)


def open_competitions(limit: int = 5) -> list[Competition]:
    now = datetime.now(timezone.utc)
    return list(
        db.scalars(
            select(Competition)
            .where(Competition.status == "published", Competition.signup_start <= now, Competition.signup_end >= now)
            .order_by(Competition.signup_end)
            .limit(limit)
        )
    )


def _line(c: Competition) -> str:
    level = COMPETITION_LEVEL_LABELS[CompetitionLevel(c.level)]
    return f"【{c.name}】\n{level} · {c.trade}\n报名截止：{fmt_local(c.signup_end)}\n剩余名额：{_places_left(c)}"


@router.keyword("竞赛", "比赛", "技能竞赛", "大赛")
@shared_answer
def competitions_bot(ctx):
    items = open_competitions()
    if not items:
        return "目前没有正在报名的竞赛，请关注后续通知。"
    return "正在报名的职业技能竞赛：\n\n" + "\n\n".join(_line(c) for c in items) + "\n\n报名请打开“职工之家”小程序“技能竞赛”。"


@router.keyword("报名", "我的报名", "报名情况", "候补")
def my_entries_bot(ctx):
    from server.services.wechat_views import entry_lines

    from .subsidies import own_records

    return own_records(ctx, entry_lines, "报名情况", "您还没有竞赛报名。回复“竞赛”查看正在报名的竞赛。", "您的竞赛报名：")


@router.scene("comp:")
def competition_card_bot(ctx, scene, via_subscribe=False):
    """A competition's sign-up QR code: the competition card with a link into the mini-program."""
    prefix = ""
    if via_subscribe:
        people.follow(ctx.openid, ctx.created_at)
        prefix = WELCOME
    try:
        competition = db.get(Competition, int(scene.split(":", 1)[1]))
    except ValueError:
        competition = None
    if competition is None or competition.status != "published":
        return prefix + "该竞赛不存在或已下线。回复“竞赛”查看正在报名的竞赛。"
    page = ctx.config.WECHAT_MINIPROGRAM_PATH_PREFIX + f"/competition/detail?id={competition.id}"
    level = COMPETITION_LEVEL_LABELS[CompetitionLevel(competition.level)]
    return (
        f"{prefix}【{competition.name}】\n{level} · {competition.trade}\n"
        f"报名时间：{fmt_local(competition.signup_start)} 至 {fmt_local(competition.signup_end)}\n"
        f"比赛地点：{competition.venue or '待定'}\n剩余名额：{_places_left(competition)}\n"
        + mini_program_link(ctx.config.WECHAT_MP_APPID, page, "点击进入小程序报名")
    )


def mini_program_link(appid: str, page: str, label: str) -> str:
    """A text-message link that opens a mini-program page (WeChat renders it as a tappable link)."""
    return f'<a data-miniprogram-appid="{appid}" data-miniprogram-path="{page}" href="https://mp.weixin.qq.com">{label}</a>'
