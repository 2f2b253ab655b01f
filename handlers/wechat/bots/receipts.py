"""Receipts from WeChat: template and mass-send results, subscribe-message consent events.

They need no reply.  Each one is stored in the push log (``wechat_pushes``,
with every field WeChat sent); the notifications engine reads them from
there to mark deliveries and consent.
"""

from __future__ import annotations

from ..router import router


@router.event(
    "templatesendjobfinish", "masssendjobfinish",
    "subscribe_msg_popup_event", "subscribe_msg_change_event", "subscribe_msg_sent_event",
)
def receipt_bot(ctx):
    return None
