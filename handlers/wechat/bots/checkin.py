"""签到: the venue's check-in QR code (scene ``checkin:<competition id>``), scanned in the Official Account.

WeChat signs the SCAN (or subscribe with ``qrscene_``) push, so the scene is
trusted as it is: only a parameter QR code the account issued produces it.
"""

from __future__ import annotations

from server.errors import ServiceError
from server.models import Competition
from server.services import competitions, people
from server.timeutil import fmt_local

from ..router import router
from .follow import WELCOME


@router.scene("checkin:")
def checkin_bot(ctx, scene, via_subscribe=False):
    prefix = ""
    if via_subscribe:
        people.follow(ctx.openid, ctx.created_at)
        ctx.forget_person()
        prefix = WELCOME
    person = ctx.person
    if person is None or not person.bound:
        return prefix + "请先回复“绑定”关联会员信息，绑定后再扫描赛场签到码。"
    try:
        competition = competitions.get_competition(int(scene.split(":")[1]))
        entry, first = competitions.venue_check_in(person, competition, "wechat")
    except (ValueError, IndexError):
        return prefix + "签到码无效，请扫描赛场张贴的签到二维码。"
    except ServiceError as exc:
        return prefix + exc.message + "。"
    return prefix + _answer(competition, entry, first)


def _answer(competition: Competition, entry, first: bool) -> str:
    at = fmt_local(entry.checked_in_at, "%m月%d日 %H:%M")
    head = "签到成功！" if first else f"您已签到，无需重复扫码（首次签到时间：{at}）。"
    lines = [head, f"【{competition.name}】", f"准考证号：{entry.candidate_number}"]
    if first:
        lines.append(f"签到时间：{at}")
    lines.append(f"比赛地点：{competition.venue or '以现场安排为准'}")
    return "\n".join(lines)
