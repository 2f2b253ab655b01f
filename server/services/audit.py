"""The audit log for state changes made by staff, workers or the system.

    record_audit(staff, "subsidy_application.approve", "subsidy_application", app.id,
                 from_state="submitted", to_state="approved", reason="...", org_id=app.org_id)

``actor`` is a :class:`Staff`, a :class:`Person` or ``None`` (the system: jobs
and sweeps).  Like every service it only adds the row; the request or job commits.
"""

from __future__ import annotations

from server.extensions import db
from server.models import AuditEntry, Person, Staff


def actor_ref(actor: Staff | Person | None) -> tuple[str, int | None]:
    """``("staff", id)``, ``("person", id)`` or ``("system", None)``."""
    if isinstance(actor, Staff):
        return "staff", actor.id
    if isinstance(actor, Person):
        return "person", actor.id
    return "system", None


def record_audit(actor: Staff | Person | None, action: str, entity_type: str, entity_id: int | None, *,
                 from_state: str | None = None, to_state: str | None = None, reason: str | None = None,
                 details: dict | None = None, org_id: int | None = None, ip: str | None = None) -> AuditEntry:
    actor_type, actor_id = actor_ref(actor)
    entry = AuditEntry(actor_type=actor_type, actor_id=actor_id, action=action, entity_type=entity_type,
                       entity_id=entity_id, from_state=from_state, to_state=to_state, reason=reason,
                       details=details, org_id=org_id, ip=ip)
    db.add(entry)
    return entry
