"""Notifications to workers about their subsidy applications.

Until the notifications issue adds WeChat delivery, a notification is an
inbox row; the dedup key makes a retried or duplicated job harmless.
"""

from __future__ import annotations

from server.extensions import db
from server.models import SubsidyApplication
from server.services import inbox, subsidies
from server.timeutil import fmt_local

from .base import job

#: status -> (title, body template); the template sees the application's fields.
MESSAGES = {
    "submitted": ("补助申请已提交", "您的{program}申请已提交，请耐心等待审核。"),
    "returned": ("补助申请需补充材料", "您的{program}申请被退回补充材料：{reason}。请在{deadline}前补充后重新提交。"),
    "expiring": ("补充材料即将到期", "您的{program}申请需在{deadline}前补充材料并重新提交，逾期申请将失效。"),
    "expired": ("补助申请已失效", "您的{program}申请未在期限内补充材料，已失效。"),
    "approved": ("补助申请已核准", "您的{program}申请已核准，核定金额{amount}元，将尽快发放。"),
    "rejected": ("补助申请未通过", "您的{program}申请未通过审核：{reason}。"),
    "paid": ("补助已发放", "您的{program}补助{amount}元已发放，请注意查收。"),
    "payment_failed": ("补助发放失败", "您的{program}补助发放未成功：{reason}。工作人员将与您联系。"),
}


@job
def notify_application(application_id: int, status: str, marker: str) -> bool:
    """Write the inbox message for ``status`` of an application (once per ``marker``)."""
    app = db.get(SubsidyApplication, application_id)
    if app is None or status not in MESSAGES:
        return False
    title, template = MESSAGES[status]
    deadline = fmt_local(app.return_deadline, "%Y年%m月%d日%H:%M")
    body = template.format(program=app.program.name, reason=app.reason or "", deadline=deadline,
                           amount=subsidies.yuan(app.approved_fen))
    return inbox.deliver_inbox_message(app.person_id, "subsidy_application", title, body,
                                       dedup_key=f"application:{app.id}:{status}:{marker}",
                                       link=f"/pages/subsidy/application?id={app.id}")


@job
def sweep_returned_applications() -> dict:
    """Expire returned applications past their deadline; remind those due within 48 hours.  Safe twice."""
    return {"expired": subsidies.expire_returned(), "reminded": subsidies.remind_expiring()}
