"""Notifications to workers about their subsidy applications, through the messages engine.

``notify`` writes the inbox copy and a WeChat delivery (server/services/messages.py
names each kind's templates and channels); the dedup key makes a retried or
duplicated job harmless.
"""

from __future__ import annotations

from server.extensions import db
from server.models import SubsidyApplication
from server.services import messages, subsidies
from server.timeutil import fmt_local

from .base import job

#: application status -> the short state shown in template messages (a ``phrase``: at most 5 characters)
STATES = {"submitted": "已提交", "returned": "待补充材料", "expiring": "即将到期", "expired": "已失效", "approved": "已核准",
          "rejected": "未通过", "paid": "已发放", "payment_failed": "发放失败"}


@job
def notify_application(application_id: int, status: str, marker: str) -> list[int]:
    """Tell the applicant about ``status`` of an application (once per ``marker``): inbox and WeChat."""
    app = db.get(SubsidyApplication, application_id)
    if app is None or status not in STATES:
        return []
    context = {"program": app.program.name, "reason": app.reason or "", "application_id": app.id,
               "deadline": fmt_local(app.return_deadline, "%Y年%m月%d日%H:%M"), "state": STATES[status],
               "amount": subsidies.yuan(app.approved_fen), "when": fmt_local(app.updated_at)}
    return messages.notify(app.person_id, f"application_{status}", context, dedup=f"{app.id}:{marker}")


@job
def sweep_returned_applications() -> dict:
    """Expire returned applications past their deadline; remind those due within 48 hours.  Safe twice."""
    return {"expired": subsidies.expire_returned(), "reminded": subsidies.remind_expiring()}
