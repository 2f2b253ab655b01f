"""Menu clicks.  The menu itself lives in server/wechat/menu.json (`unionhub wechat-menu`)."""

from __future__ import annotations

from sqlalchemy import select

from server.extensions import db
from server.models import KeywordReply

from ..router import router
from . import binding, competitions, help, subsidies

MENU_ACTIONS = {
    "MENU_SUBSIDY": subsidies.subsidy_rules_bot,
    "MENU_PROGRESS": subsidies.subsidy_progress_bot,
    "MENU_COMPETITION": competitions.competitions_bot,
    "MENU_MY_ENTRIES": competitions.my_entries_bot,
    "MENU_BIND": binding.bind_start,
}


@router.menu(*MENU_ACTIONS)
def menu_bot(ctx):
    return MENU_ACTIONS[ctx.event_key](ctx)


@router.menu("MENU_HOTLINE", "MENU_POLICY")
def menu_text_bot(ctx):
    """Menu items whose answer staff maintain as keyword replies (热线, 政策)."""
    keyword = {"MENU_HOTLINE": "热线", "MENU_POLICY": "政策"}[ctx.event_key]
    reply = db.scalars(
        select(KeywordReply.reply).where(KeywordReply.keyword == keyword, KeywordReply.active.is_(True)).order_by(KeywordReply.priority)
    ).first()
    return reply or help.CAPABILITIES
