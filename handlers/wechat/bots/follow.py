"""Follow and unfollow."""

from __future__ import annotations

from server.services import people

from ..router import router
from .help import CAPABILITIES

WELCOME = "欢迎关注江城市总工会！我们为职工提供技能提升补助、职业技能竞赛报名、政策咨询等服务。\n\n"


@router.event("subscribe")
def follow_bot(ctx):
    person, is_new = people.follow(ctx.openid, ctx.created_at)
    if is_new or not person.unionid:
        from jobs.queues import enqueue_after_commit
        from jobs.wechat import link_follower

        enqueue_after_commit(link_follower, ctx.openid)
    greeting = WELCOME + CAPABILITIES
    if not person.bound:
        greeting += "\n\n首次使用请先回复“绑定”关联会员信息。"
    return greeting


@router.event("unsubscribe")
def unfollow_bot(ctx):
    people.unfollow(ctx.openid)
    return None  # WeChat shows nothing to someone who has left
