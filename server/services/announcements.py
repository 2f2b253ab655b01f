"""Announcements (公告): write, preview, send now or later, pause, resume, cancel, report; group bots.

The fan-out itself is :mod:`jobs.broadcast`; this module holds the rules and
the state changes, which flush and never commit.  Status::

    draft -> scheduled -> sending <-> paused -> done
         \\________________\\__________\\______-> cancelled

An announcement is ``done`` when its fan-out has reached the end of the
audience and none of its deliveries is pending or sending (a conditional
UPDATE, so two finishing batches cannot disagree).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update

from server.errors import Conflict, NotFound, ServiceError
from server.extensions import db
from server.models import (
    Announcement,
    AnnouncementRead,
    Channel,
    Delivery,
    Organisation,
    OrgWebhook,
    Person,
    Staff,
    StaffRole,
    utcnow,
)
from server.services import audience, messages
from server.services.auth import require_in_scope, require_role
from server.services.txn import insert_ignore
from server.timeutil import fmt_local
from server.wechat.errors import classify

KIND, GROUP_KIND = "announcement", "announcement_group"
STATUS_LABELS = {"draft": "草稿", "scheduled": "已定时", "sending": "发送中", "paused": "已暂停",
                 "cancelled": "已取消", "done": "已完成"}
WRITERS = (StaffRole.ORGANISER, StaffRole.OFFICER)
OPEN = ("pending", "sending")
FAILED = ("failed", "skipped", "unknown", "blocked")
DETAIL_PAGE = "pages/announcement/detail?id={id}"
INBOX_SUMMARY = 200  # characters of the body in each inbox copy (the full text is on the detail page)
CONTEXT_BODY_BYTES = 1800  # body kept on each delivery, enough for a customer-service text (2,048 bytes)
PUBLIC_WINDOW = 200  # latest published announcements a worker's list looks at


# -- staff: write, read ----------------------------------------------------------------------------

def create(staff: Staff, data: dict) -> Announcement:
    require_role(staff, *WRITERS)
    audience.validate(staff, data["audience"])
    a = Announcement(org_id=staff.org_id, created_by=staff.id, title=data["title"], body=data["body"],
                     link=data.get("link") or None, urgent=data.get("urgent", False), audience=data["audience"])
    db.add(a)
    db.flush()
    return a


def get(staff: Staff, announcement_id: int, lock: bool = False) -> Announcement:
    stmt = select(Announcement).where(Announcement.id == announcement_id)
    a = db.scalar(stmt.with_for_update() if lock else stmt)
    if a is None:
        raise NotFound("公告不存在")
    require_in_scope(staff, db.get(Organisation, a.org_id), "公告不存在")
    return a


def list_for_staff(staff: Staff, status: str | None = None, limit: int = 50, offset: int = 0) -> list[Announcement]:
    stmt = (select(Announcement).join(Organisation, Organisation.id == Announcement.org_id)
            .where(Organisation.path.startswith(staff.org.path)).order_by(Announcement.id.desc()))
    if status:
        stmt = stmt.where(Announcement.status == status)
    return list(db.scalars(stmt.limit(limit).offset(offset)))


def counts(announcement_id: int) -> dict[str, dict[str, int]]:
    """channel -> status -> deliveries ("pending" shown as "queued")."""
    rows = db.execute(select(Delivery.channel, Delivery.status, func.count())
                      .where(Delivery.announcement_id == announcement_id)
                      .group_by(Delivery.channel, Delivery.status)).all()
    out: dict[str, dict[str, int]] = {}
    for channel, status, n in rows:
        out.setdefault(channel, {})["queued" if status == "pending" else status] = n
    return out


def view(a: Announcement, detail: bool = True) -> dict:
    out = {c: getattr(a, c) for c in ("id", "org_id", "title", "body", "link", "urgent", "audience", "status",
                                      "scheduled_at", "started_at", "finished_at", "published_at", "created_at",
                                      "recipients", "fanout_done")}
    out["status_label"] = STATUS_LABELS[a.status]
    if detail:
        out["progress"] = counts(a.id)
        totals: dict[str, int] = {}
        for per_status in out["progress"].values():
            for status, n in per_status.items():
                totals[status] = totals.get(status, 0) + n
        out["totals"] = totals
    return out


def preview(staff: Staff, a: Announcement) -> dict:
    """How many people it reaches, and on which channel first (the same choice the fan-out makes)."""
    now, channels, total = utcnow(), {}, 0
    for rows in audience.pages(a):
        total += len(rows)
        for row in rows:
            channel, _ = messages.choose_channel(row, KIND, now)
            channels[channel or "inbox"] = channels.get(channel or "inbox", 0) + 1
    groups = db.scalar(select(func.count()).select_from(OrgWebhook).where(
        OrgWebhook.active.is_(True), OrgWebhook.org_id.in_(audience.target_orgs(a)))) or 0
    return {"recipients": total, "channels": channels, "groups": groups}


# -- staff: send, schedule, pause, resume, cancel --------------------------------------------------

def _require(a: Announcement, *statuses: str, message: str) -> None:
    if a.status not in statuses:
        raise Conflict("announcement_state", message, status_now=a.status)


def send(staff: Staff, a: Announcement, at: datetime | None = None) -> Announcement:
    """Send now, or at ``at`` (a cron job starts it); a scheduled one may be moved or sent at once."""
    require_role(staff, *WRITERS)
    _require(a, "draft", "scheduled", message="只有草稿或定时中的公告可以发送")
    now = utcnow()
    if at is not None and at < now - timedelta(minutes=1):
        raise ServiceError("validation_error", "提交的信息有误，请检查后重试", 422, errors={"at": ["发送时间应晚于现在"]})
    if audience.count(a) == 0:
        raise ServiceError("empty_audience", "该公告的发送范围内没有任何接收人", 422)
    if at is not None and at > now:
        a.status, a.scheduled_at = "scheduled", at
    else:
        start(a)
    db.flush()
    return a


def start(a: Announcement) -> None:
    """scheduled/draft -> sending, published, fan-out queued after commit."""
    from jobs import broadcast

    now = utcnow()
    a.status, a.started_at, a.published_at = "sending", now, now
    db.flush()
    broadcast.enqueue_fanout(a.id, a.fanout_cursor)


def start_due(now: datetime | None = None) -> list[int]:
    """Start scheduled announcements whose time has come (safe with two schedulers: a conditional UPDATE)."""
    now = now or utcnow()
    started = []
    for a_id in db.scalars(select(Announcement.id).where(Announcement.status == "scheduled",
                                                         Announcement.scheduled_at <= now)).all():
        claimed = db.execute(update(Announcement).where(Announcement.id == a_id, Announcement.status == "scheduled")
                             .values(status="sending", started_at=now, published_at=now, updated_at=now)).rowcount
        if claimed:
            from jobs import broadcast

            broadcast.enqueue_fanout(a_id, db.scalar(select(Announcement.fanout_cursor)
                                                     .where(Announcement.id == a_id)))
            started.append(a_id)
    return started


def pause(staff: Staff, a: Announcement) -> Announcement:
    """Stop the fan-out; queued deliveries wait (their batch jobs leave them pending)."""
    require_role(staff, *WRITERS)
    _require(a, "sending", message="只有发送中的公告可以暂停")
    a.status = "paused"
    db.flush()
    return a


def resume(staff: Staff, a: Announcement) -> Announcement:
    from jobs import broadcast

    require_role(staff, *WRITERS)
    _require(a, "paused", message="只有已暂停的公告可以继续")
    a.status = "sending"
    db.flush()
    if not a.fanout_done:
        broadcast.enqueue_fanout(a.id, a.fanout_cursor)
    broadcast.requeue_pending(a.id)
    return a


def cancel(staff: Staff, a: Announcement) -> Announcement:
    """Cancel: deliveries not yet sent become ``cancelled`` (those being sent finish); it leaves the workers' list."""
    require_role(staff, *WRITERS)
    _require(a, "draft", "scheduled", "sending", "paused", message="该公告已结束，不能取消")
    now = utcnow()
    a.status, a.finished_at = "cancelled", now
    db.execute(update(Delivery).where(Delivery.announcement_id == a.id, Delivery.status == "pending")
               .values(status="cancelled", updated_at=now))
    db.flush()
    return a


def finish_if_done(announcement_id: int) -> bool:
    """sending -> done once the fan-out is complete and nothing is pending or sending.

    A read first (it takes no write lock, and naming every channel lets the database seek the
    (announcement, channel, status) index instead of scanning the announcement's rows), then a
    conditional UPDATE, so two finishing batches cannot disagree.
    """
    busy = exists().where(Delivery.announcement_id == announcement_id, Delivery.channel.in_([c.value for c in Channel]),
                          Delivery.status.in_(OPEN))
    where = (Announcement.id == announcement_id, Announcement.status == "sending", Announcement.fanout_done.is_(True),
             ~busy)
    if db.scalar(select(Announcement.id).where(*where)) is None:
        return False
    now = utcnow()
    return bool(db.execute(update(Announcement).where(*where).values(status="done", finished_at=now,
                                                                      updated_at=now)).rowcount)


def report(staff: Staff, a: Announcement, limit: int = 200, offset: int = 0) -> dict:
    """Deliveries that did not arrive, with their reasons, and a summary by reason."""
    reason = func.coalesce(Delivery.skip_reason, Delivery.error_message)
    where = (Delivery.announcement_id == a.id, Delivery.status.in_(FAILED))
    summary = db.execute(select(Delivery.channel, Delivery.status, Delivery.error_code, reason, func.count())
                         .where(*where).group_by(Delivery.channel, Delivery.status, Delivery.error_code, reason)
                         .order_by(func.count().desc())).all()
    rows = db.execute(select(Delivery.id, Delivery.person_id, Delivery.org_id, Delivery.channel, Delivery.status,
                             Delivery.attempts, Delivery.error_code, reason.label("reason"))
                      .where(*where).order_by(Delivery.id).limit(limit).offset(offset)).all()
    totals = {}
    for per_status in counts(a.id).values():
        for status, n in per_status.items():
            totals[status] = totals.get(status, 0) + n
    return {
        "announcement_id": a.id, "status": a.status, "totals": totals,
        "reasons": [{"channel": c, "status": s, "error_code": e, "reason": r, "count": n} for c, s, e, r, n in summary],
        "failures": [{"delivery_id": r.id, "person_id": r.person_id, "org_id": r.org_id, "channel": r.channel,
                      "status": r.status, "attempts": r.attempts, "error_code": r.error_code, "reason": r.reason}
                     for r in rows],
    }


def retryable(error_code: int | None) -> bool:
    return classify(error_code) != "permanent"


def retry_failed(announcement_id: int) -> dict:
    """Failed deliveries with a transient cause go back to pending (and are queued after commit)."""
    from jobs import broadcast

    a = db.get(Announcement, announcement_id)
    if a is None:
        raise NotFound("公告不存在")
    failed = db.execute(select(Delivery.id, Delivery.error_code).where(
        Delivery.announcement_id == a.id, Delivery.status == "failed")).all()
    ids = [i for i, code in failed if retryable(code)]
    now = utcnow()
    for chunk in (ids[i:i + 1000] for i in range(0, len(ids), 1000)):
        db.execute(update(Delivery).where(Delivery.id.in_(chunk), Delivery.status == "failed").values(
            status="pending", attempts=0, not_before=None, error_code=None, error_message=None, updated_at=now))
    if ids and a.status == "done":
        a.status, a.finished_at = "sending", None
    db.flush()
    if ids and a.status == "sending":
        broadcast.enqueue_batches(a.id, ids)
    return {"announcement_id": a.id, "requeued": len(ids), "permanent": len(failed) - len(ids)}


# -- what the fan-out writes -----------------------------------------------------------------------

def context(a: Announcement) -> dict:
    """The template context every delivery of ``a`` carries (the body only as far as any channel uses it)."""
    return {"title": a.title, "body": messages.cut_bytes(a.body, CONTEXT_BODY_BYTES)[0],
            "when": fmt_local(a.published_at or utcnow()), "link": a.link or DETAIL_PAGE.format(id=a.id),
            "announcement_id": a.id}


def inbox_row(a: Announcement, person_id: int, now: datetime) -> dict:
    body = a.body if len(a.body) <= INBOX_SUMMARY else a.body[:INBOX_SUMMARY - 1] + "…"
    return {"person_id": person_id, "kind": KIND, "title": a.title, "body": body,
            "link": DETAIL_PAGE.format(id=a.id), "dedup_key": f"{KIND}:{a.id}:{person_id}", "created_at": now}


def group_rows(a: Announcement, now: datetime, hold: datetime | None) -> list[dict]:
    """One wecom_group delivery per target organisation with an active bot (dedup per announcement + org)."""
    hooks = db.execute(select(OrgWebhook.org_id, OrgWebhook.msgtype).where(
        OrgWebhook.active.is_(True), OrgWebhook.org_id.in_(audience.target_orgs(a)))).all()
    ctx = context(a)
    ctx["body"] = a.body
    return [{"dedup_key": messages.dedup_key(GROUP_KIND, f"{a.id}:{org_id}", messages.WECOM_GROUP),
             "org_id": org_id, "announcement_id": a.id, "kind": GROUP_KIND, "channel": messages.WECOM_GROUP,
             "urgent": a.urgent, "not_before": hold, "status": "pending", "attempts": 0,
             "payload": {**messages.render(GROUP_KIND, messages.WECOM_GROUP, {**ctx, "msgtype": msgtype}),
                         "context": messages.plain({**ctx, "msgtype": msgtype})},
             "created_at": now, "updated_at": now} for org_id, msgtype in hooks]


# -- group bots ------------------------------------------------------------------------------------

def _org_in_scope(staff: Staff, org_id: int) -> Organisation:
    org = db.get(Organisation, org_id)
    require_in_scope(staff, org, "组织不存在")
    return org


def webhook_view(hook: OrgWebhook) -> dict:
    key = hook.webhook_key
    return {"org_id": hook.org_id, "key_masked": key[:4] + "*" * max(len(key) - 8, 4) + key[-4:],
            "msgtype": hook.msgtype, "active": hook.active, "last_error": hook.last_error}


def get_webhook(staff: Staff, org_id: int) -> OrgWebhook:
    _org_in_scope(staff, org_id)
    hook = db.scalar(select(OrgWebhook).where(OrgWebhook.org_id == org_id))
    if hook is None:
        raise NotFound("该组织尚未设置群机器人")
    return hook


def set_webhook(staff: Staff, org_id: int, key: str, msgtype: str) -> OrgWebhook:
    require_role(staff)
    _org_in_scope(staff, org_id)
    now = utcnow()
    insert_ignore(OrgWebhook.__table__, {"org_id": org_id, "webhook_key": key, "msgtype": msgtype, "active": True,
                                         "created_at": now, "updated_at": now}, ["org_id"])
    hook = db.scalar(select(OrgWebhook).where(OrgWebhook.org_id == org_id).execution_options(populate_existing=True))
    hook.webhook_key, hook.msgtype, hook.active, hook.last_error = key, msgtype, True, None
    db.flush()
    return hook


def delete_webhook(staff: Staff, org_id: int) -> None:
    require_role(staff)
    db.delete(get_webhook(staff, org_id))
    db.flush()


# -- workers (mini-program) ------------------------------------------------------------------------

def _published():
    return select(Announcement).where(Announcement.status.in_(("sending", "paused", "done")),
                                      Announcement.published_at.is_not(None))


def visible(person: Person, a: Announcement) -> bool:
    """The worker is among its recipients, or (still) in its audience."""
    got = db.scalar(select(Delivery.id).where(Delivery.announcement_id == a.id, Delivery.person_id == person.id)
                    .limit(1))
    return got is not None or audience.includes(a, person.id)


def list_for_worker(person: Person, limit: int = 20, offset: int = 0) -> list[dict]:
    recent = db.scalars(_published().order_by(Announcement.published_at.desc(), Announcement.id.desc())
                        .limit(PUBLIC_WINDOW)).all()
    ids = [a.id for a in recent]
    delivered = set(db.scalars(select(Delivery.announcement_id).where(
        Delivery.person_id == person.id, Delivery.announcement_id.in_(ids)))) if ids else set()
    read = set(db.scalars(select(AnnouncementRead.announcement_id).where(
        AnnouncementRead.person_id == person.id, AnnouncementRead.announcement_id.in_(ids)))) if ids else set()
    shown = [a for a in recent if a.id in delivered or audience.includes(a, person.id)]
    return [public_view(a, a.id in read) for a in shown[offset:offset + limit]]


def open_for_worker(person: Person, announcement_id: int) -> dict:
    """One announcement the worker may see; opening it records the read (once)."""
    a = db.scalar(_published().where(Announcement.id == announcement_id))
    if a is None or not visible(person, a):
        raise NotFound("公告不存在")
    insert_ignore(AnnouncementRead.__table__, {"announcement_id": a.id, "person_id": person.id, "read_at": utcnow()},
                  ["announcement_id", "person_id"])
    return public_view(a, True)


def public_view(a: Announcement, read: bool) -> dict:
    return {"id": a.id, "title": a.title, "body": a.body, "link": a.link, "published_at": a.published_at, "read": read}
