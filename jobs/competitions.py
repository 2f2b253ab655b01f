"""Competition jobs: notices to entrants, and the waiting-list offer sweep.

A notice goes through the notification engine (``server.services.messages``):
the inbox copy at once, a WeChat delivery on the first usable channel; its
dedup key (entry and notice) makes a retried or duplicated job harmless.
"""

from __future__ import annotations

from server.extensions import db
from server.models import ENTRY_STATUS_LABELS, CompetitionEntry, EntryStatus
from server.services import competitions
from server.services.messages import notify
from server.timeutil import fmt_local, local_now

from .base import job

#: Notices with a deadline the worker must meet skip quiet hours.
URGENT_NOTICES = {"offered", "offer_reminder"}


@job
def notify_entry(entry_id: int, kind: str) -> bool:
    """Tell the entrant about ``kind`` (once per entry and kind)."""
    entry = db.get(CompetitionEntry, entry_id)
    if entry is None:
        return False
    title, body = competitions.entry_notice(entry, kind)
    context = {
        "title": title, "body": body, "competition": entry.competition.name, "competition_id": entry.competition_id,
        "state": ENTRY_STATUS_LABELS[EntryStatus(entry.status)], "when": fmt_local(local_now()),
        "deadline": fmt_local(entry.offer_expires_at) or fmt_local(local_now()),
    }
    message_kind = "competition_notice_urgent" if kind in URGENT_NOTICES else "competition_notice"
    return bool(notify(entry.person_id, message_kind, context, dedup=f"entry:{entry.id}:{kind}"))


@job
def sweep_offers() -> dict:
    """Expire waiting-list offers past their deadline (passing the place on) and remind those due soon."""
    return {"expired": competitions.expire_offers(), "reminded": competitions.remind_offers()}
