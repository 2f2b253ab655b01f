"""Competition jobs: notices to entrants, and the waiting-list offer sweep.

Until the notifications issue adds WeChat delivery, a notice is an inbox row;
the dedup key makes a retried or duplicated job harmless.
"""

from __future__ import annotations

from server.extensions import db
from server.models import CompetitionEntry
from server.services import competitions, inbox

from .base import job


@job
def notify_entry(entry_id: int, kind: str) -> bool:
    """Write the entrant's inbox notice about ``kind`` (once per entry and kind)."""
    entry = db.get(CompetitionEntry, entry_id)
    if entry is None:
        return False
    title, body = competitions.entry_notice(entry, kind)
    return inbox.deliver_inbox_message(entry.person_id, "competition_entry", title, body,
                                       dedup_key=f"competition_entry:{entry.id}:{kind}",
                                       link=f"/pages/competition/detail?id={entry.competition_id}")


@job
def sweep_offers() -> dict:
    """Expire waiting-list offers past their deadline (passing the place on) and remind those due soon."""
    return {"expired": competitions.expire_offers(), "reminded": competitions.remind_offers()}
