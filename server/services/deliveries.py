"""Delivery rows through their life: claim, the last checks before a send, results, receipts, the sweep.

Rules (flush only; the job in jobs/delivery.py commits):

* a worker sends only rows it claimed with one conditional UPDATE
  (``pending``, due and, for an announcement's rows, the announcement still
  ``sending`` -> ``sending``), so a row is sent at most once and a pause takes
  effect at the next claim; the UPDATE returns what the send needs (the row,
  the person's openids and follow state, the group bot's key);
* a row stuck in ``sending`` past the lease becomes ``unknown`` (it may
  have reached WeChat) and is reported, never sent again;
* permanent errors are recorded with WeChat's code; transient ones go back
  to ``pending`` with an exponential back-off until the attempts run out;
* a recipient who cannot get the message on a channel (no consent left,
  unfollowed, refused with 43101/43004) falls back to the kind's next
  channel: a new delivery row with the reason recorded on this one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import and_, bindparam, case, exists, literal_column, or_, select, update

from server.extensions import db
from server.models import Announcement, Delivery, OrgWebhook, Person, utcnow
from server.services import consent, messages, people
from server.wechat.errors import WeChatAPIError

log = logging.getLogger("unionhub.deliveries")
T = Delivery.__table__
#: Permanent refusals that mean "not on this channel" rather than "not at all": try the next channel.
FALL_BACK_ON = {43004, 43101}
#: A pending row with no hold, untouched this long, lost its job (e.g. Redis was down): the sweep re-enqueues it.
LOST_AFTER = timedelta(seconds=60)
PERSON_FIELDS = ("oa_openid", "mp_openid", "oa_subscribed", "oa_cs_until", "oa_cs_left")
#: The delivery's columns a claim returns: what a send, its result and a fall-back need (no timestamps, no
#: earlier results: each returned value is converted per row).
ITEM_FIELDS = ("id", "dedup_key", "person_id", "org_id", "announcement_id", "kind", "channel", "payload", "urgent",
               "attempts")
RESULT_FIELDS = ("status", "attempts", "sent_at", "wechat_msgid", "error_code", "error_message", "skip_reason",
                 "not_before")


# -- claim ---------------------------------------------------------------------------------------

#: What a send needs besides the delivery row, read by the claiming UPDATE (subqueries correlated on the row).
#: The row's columns are named in full text: SQLAlchemy writes a RETURNING clause without table names on SQLite,
#: and a bare ``org_id`` inside the subquery would be the webhook's own column.
_ROW_PERSON, _ROW_ORG = literal_column("deliveries.person_id"), literal_column("deliveries.org_id")
_PERSON = [select(getattr(Person, f)).where(Person.id == _ROW_PERSON).scalar_subquery().label(f) for f in PERSON_FIELDS]
_WEBHOOK = [select(OrgWebhook.webhook_key).where(OrgWebhook.org_id == _ROW_ORG).scalar_subquery().label("webhook_key"),
            select(OrgWebhook.active).where(OrgWebhook.org_id == _ROW_ORG).scalar_subquery().label("webhook_active")]
# Built once: a sender runs them every few sends, and building (and keying) a statement costs more than running it.
# ``status || ''``: the same test, but no index on status is usable, so the rows are found by id.  Otherwise a
# database without statistics (SQLite always, PostgreSQL on a fresh table) may read every pending row instead
# (a whole broadcast's while its fan-out runs ahead of the sends) for each claim.
_CLAIM = (update(T).where(T.c.id.in_(bindparam("ids", expanding=True)), T.c.status.concat("") == "pending",
                          or_(T.c.not_before.is_(None), T.c.not_before <= bindparam("now")),
                          or_(T.c.announcement_id.is_(None), exists().where(Announcement.id == T.c.announcement_id,
                                                                            Announcement.status == "sending")))
          .values(status="sending", claimed_at=bindparam("now"), updated_at=bindparam("now"), attempts=T.c.attempts + 1)
          .returning(*[T.c[f] for f in ITEM_FIELDS], *_PERSON, *_WEBHOOK))
_RECORD = (update(T).where(T.c.id == bindparam("_id"), or_(T.c.status == "sending", T.c.status == "unknown"))
           .values(updated_at=bindparam("now"), **{f: bindparam(f"v_{f}") for f in RESULT_FIELDS}))


_CLAIM_AND_RECORD: dict[int, object] = {}  # successes recorded -> the claim with their UPDATE in a WITH (PostgreSQL)


def claim(ids: list[int], now: datetime, sent: list[dict] = ()) -> list[dict]:
    """Atomically move the given due ``pending`` rows to ``sending``: the rows this caller now owns, as plain
    data for the sending threads (no ORM objects cross threads), by id.

    Rows of an announcement that is not ``sending`` (paused, cancelled) are left as they are.  ``sent``: plain
    successes (see :func:`record`) to record in the same statement on PostgreSQL (a WITH), else just before.
    """
    if not ids:
        record(list(sent))
        return []
    stmt, params = _CLAIM, {"ids": list(ids), "now": now}
    if sent and db.get_bind().dialect.name == "postgresql" and len({r["sent_at"] for r in sent}) == 1:
        stmt = _CLAIM_AND_RECORD.get(len(sent))
        if stmt is None:
            stmt = _CLAIM_AND_RECORD[len(sent)] = _CLAIM.add_cte(_sent_stmt(len(sent), "recorded_at").cte("recorded"))
        params.update(_sent_params(sent), recorded_at=sent[0]["sent_at"])
    else:
        record(list(sent))
    rows = db.execute(stmt, params)
    return sorted((dict(row._mapping) for row in rows), key=lambda item: item["id"])


def precheck(item: dict, now: datetime) -> str | None:
    """The last checks before a send (spending a subscribe-message consent); the skip reason, or None to send."""
    if item["channel"] == messages.WECOM_GROUP:
        return None if item["webhook_key"] and item["webhook_active"] else "no_webhook"
    person = SimpleNamespace(id=item["person_id"], **{f: item[f] for f in PERSON_FIELDS})
    template = (item["payload"] or {}).get("template_id", "")
    return messages.unusable(person, item["kind"], item["channel"], now,
                             has_consent=lambda: consent.consume(item["person_id"], template),
                             spend_cs=lambda: people.spend_cs(item["person_id"], now))


def claim_for_sending(ids: list[int], now: datetime, results: list[dict] = ()) -> tuple[list[dict], list[int]]:
    """Record ``results``, then claim, load and check: (items to send, ids of fall-back deliveries created for
    skipped ones).  Plain successes among the results are written by the claiming statement where it can."""
    sent = [r for r in results if plain_success(r)]
    record([r for r in results if not plain_success(r)])
    ready, skipped, fallbacks = [], [], []
    for item in claim(ids, now, sent):
        reason = precheck(item, now)
        if reason is None:
            ready.append(item)
            continue
        skipped.append(result(item, "skipped", skip_reason=reason, attempts=item["attempts"] - 1))
        fallbacks += fall_back(item, now)
    record(skipped)
    return ready, fallbacks


# -- results -------------------------------------------------------------------------------------

def result(item: dict, status: str, **fields) -> dict:
    return {"_id": item["id"], **dict.fromkeys(RESULT_FIELDS), "attempts": item["attempts"], "status": status,
            **fields}


def outcome(item: dict, answer: dict | None, error: BaseException | None, now: datetime, config) -> dict:
    """The row's new state after one send: sent, failed (permanent or out of attempts) or pending again."""
    if error is None:
        msgid = (answer or {}).get("msgid")
        return result(item, "sent", sent_at=now, wechat_msgid=None if msgid is None else str(msgid))
    if not isinstance(error, WeChatAPIError):  # a bug or bad payload: record it, never crash the worker
        return result(item, "failed", error_message=f"{type(error).__name__}: {error}"[:255])
    code, message = error.errcode, (error.errmsg or "")[:255]
    if error.kind == "permanent":
        return result(item, "failed", error_code=code, error_message=message)
    if item["attempts"] >= config.DELIVERY_MAX_ATTEMPTS:
        return result(item, "failed", error_code=code, error_message=f"gave up after {item['attempts']} attempts: {message}"[:255])
    delay = config.DELIVERY_RETRY_SECONDS * 2 ** (item["attempts"] - 1)
    return result(item, "pending", error_code=code, error_message=message, not_before=now + timedelta(seconds=delay))


_SENT: dict[tuple, object] = {}  # (rows, time parameter) -> the UPDATE recording that many plain successes


def _sent_stmt(rows: int, at: str = "now"):
    """UPDATE for ``rows`` successes sent at one time: one statement whatever their number (each has its msgid)."""
    stmt = _SENT.get((rows, at))
    if stmt is None:
        ids = [bindparam(f"i{n}", type_=T.c.id.type) for n in range(rows)]
        msgid = case(*[(T.c.id == i, bindparam(f"m{n}", type_=T.c.wechat_msgid.type)) for n, i in enumerate(ids)])
        stmt = _SENT[rows, at] = (update(T).where(T.c.id.in_(ids), T.c.status.in_(("sending", "unknown")))
                                  .values(status="sent", sent_at=bindparam(at), wechat_msgid=msgid, updated_at=bindparam(at),
                                          **dict.fromkeys(("error_code", "error_message", "skip_reason", "not_before"))))
    return stmt


def _sent_params(rows: list[dict]) -> dict:
    return {**{f"i{n}": r["_id"] for n, r in enumerate(rows)}, **{f"m{n}": r["wechat_msgid"] for n, r in enumerate(rows)}}


def plain_success(r: dict) -> bool:
    """A result that only says "sent" (with a msgid): the common case, recorded many at a time."""
    return r["status"] == "sent" and not any(r[f] for f in ("error_code", "error_message", "skip_reason", "not_before"))


def record(results: list[dict]) -> None:
    """Write results, but only over rows still claimed (or marked unknown meanwhile by the sweep).

    Successes sent at one time (a batch of finished sends) share one UPDATE; anything else is one executemany.
    """
    sent: dict = {}
    others = []
    for r in results:
        (sent.setdefault(r["sent_at"], []) if plain_success(r) else others).append(r)
    for at, rows in sent.items():
        db.execute(_sent_stmt(len(rows)), {"now": at, **_sent_params(rows)})
    if others:
        now = utcnow()
        db.execute(_RECORD, [{"_id": r["_id"], "now": now, **{f"v_{f}": r[f] for f in RESULT_FIELDS}} for r in others])


def after_failure(item: dict, row: dict, now: datetime) -> list[int]:
    """Side effects of a failed send: the consent ledger, the webhook's last error, a fall-back channel."""
    code = row["error_code"]
    if item["channel"] == messages.WECOM_GROUP:
        db.execute(update(OrgWebhook).where(OrgWebhook.org_id == item["org_id"])
                   .values(last_error=f"{code}: {row['error_message']}"[:255], updated_at=now))
    if row["status"] != "failed" or code not in FALL_BACK_ON:
        return []
    if code == 43101 and item["channel"] == messages.MP_SUBSCRIBE:
        consent.withdraw(item["person_id"], [item["payload"].get("template_id")], "errcode_43101")
    return fall_back(item, now)


def fall_back(item: dict, now: datetime) -> list[int]:
    """Create the delivery on the kind's next usable channel; the ids to enqueue (none while held)."""
    kind, channel, key = item["kind"], item["channel"], item["dedup_key"]
    context = (item["payload"] or {}).get("context")
    prefix, suffix = f"{kind}:", f":{channel}"
    if context is None or not item["person_id"] or not (key.startswith(prefix) and key.endswith(suffix)):
        return []
    person = db.get(Person, item["person_id"])
    dedup = key[len(prefix):-len(suffix)]
    hold = messages.quiet_until(now, item["urgent"])
    target, payload, skipped = messages.plan(person, kind, context, now, after=channel)
    for row in messages.delivery_rows(person.id, kind, dedup, target, payload, skipped, item["urgent"], hold,
                                      announcement_id=item["announcement_id"]):
        messages.add_delivery(row)
    if target is None or hold is not None:
        return []
    new = db.scalar(select(Delivery.id).where(Delivery.dedup_key == messages.dedup_key(kind, dedup, target),
                                              Delivery.status == "pending"))
    return [new] if new else []


# -- receipts ------------------------------------------------------------------------------------

RECEIPT_STATUS = {"success": "delivered", "failed:user block": "blocked"}


def apply_template_receipt(msgid: str, status: str) -> int:
    """TEMPLATESENDJOBFINISH: the template delivery with ``msgid`` was delivered, blocked or failed."""
    if not msgid:
        return 0
    new = RECEIPT_STATUS.get(status.strip().lower(), "failed")
    values = {"status": new, "updated_at": utcnow()}
    if new == "failed":
        values["error_message"] = status[:255]
    return db.execute(update(T).where(T.c.wechat_msgid == msgid, T.c.channel == messages.OA_TEMPLATE,
                                      T.c.status.in_(("sent", "unknown"))).values(**values)).rowcount


# -- the sweep -----------------------------------------------------------------------------------

def mark_unknown(now: datetime, lease_seconds: int) -> list[int]:
    """Rows claimed longer ago than the lease: ``unknown`` (they may have reached WeChat), reported."""
    stale = now - timedelta(seconds=lease_seconds)
    stmt = (update(T).where(T.c.status == "sending", T.c.claimed_at < stale)
            .values(status="unknown", updated_at=now, error_message="worker lost mid-send; not retried")
            .returning(T.c.id))
    ids = sorted(db.execute(stmt).scalars())
    if ids:
        log.warning("%d deliveries stuck in sending became unknown: %s", len(ids), ids[:50])
    return ids


def due_ids(now: datetime, limit: int) -> list[int]:
    """Pending rows whose hold or back-off ended, or whose job was lost; never a paused or cancelled broadcast's."""
    due = or_(T.c.not_before <= now, and_(T.c.not_before.is_(None), T.c.updated_at < now - LOST_AFTER))
    live = or_(T.c.announcement_id.is_(None), Announcement.status == "sending")
    query = (select(T.c.id).outerjoin(Announcement, Announcement.id == T.c.announcement_id)
             .where(T.c.status == "pending", due, live).order_by(T.c.id).limit(limit))
    return list(db.scalars(query))


def stats() -> dict:
    """Delivery counts by channel and status (for operators)."""
    from sqlalchemy import func

    rows = db.execute(select(T.c.channel, T.c.status, func.count()).group_by(T.c.channel, T.c.status))
    out: dict = {}
    for channel, status, count in rows:
        out.setdefault(channel, {})[status] = count
    return out
