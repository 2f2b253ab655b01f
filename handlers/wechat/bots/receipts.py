"""Receipts from WeChat: template and mass-send results, subscribe-message consent events.

They need no reply.  Each one is also stored in the push log (``wechat_pushes``).
TEMPLATESENDJOBFINISH marks the template delivery with that MsgID delivered,
blocked (``failed:user block``) or failed (``failed: system failed``); the
subscribe_msg_* events update the consent ledger (server/services/consent.py).
"""

from __future__ import annotations

from server.services import consent, deliveries

from ..router import router


@router.event("templatesendjobfinish")
def template_receipt_bot(ctx):
    deliveries.apply_template_receipt(str(ctx.message.get("MsgID") or ""), ctx.message.get("Status") or "")
    return None


@router.event("subscribe_msg_popup_event", "subscribe_msg_change_event", "subscribe_msg_sent_event")
def consent_event_bot(ctx):
    consent.apply_oa_event(ctx.message)
    return None


@router.event("masssendjobfinish")
def receipt_bot(ctx):
    return None
