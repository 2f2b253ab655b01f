"""Writing the audit log (who, when, what, from which state to which, why)."""

from __future__ import annotations

from server.extensions import db
from server.models import AuditEntry


def audit(action: str, entity_type: str, entity_id: int | None, *, actor_type: str = "system", actor_id: int | None = None,
          org_id: int | None = None, from_state: str | None = None, to_state: str | None = None,
          reason: str | None = None, details: dict | None = None, ip: str | None = None) -> AuditEntry:
    entry = AuditEntry(
        action=action, entity_type=entity_type, entity_id=entity_id, actor_type=actor_type, actor_id=actor_id,
        org_id=org_id, from_state=from_state, to_state=to_state, reason=reason, details=details, ip=ip,
    )
    db.add(entry)
    return entry
