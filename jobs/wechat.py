"""Official Account jobs: late and slow bot answers, the push log, follower linking."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from redis.exceptions import LockError
from sqlalchemy import select

from server.extensions import db, get_redis
from server.models import Person, WechatPush
from server.services.txn import insert_ignore_many
from server.wechat import gateway
from server.wechat.errors import WeChatAPIError

from .base import job

log = logging.getLogger("unionhub.jobs.wechat")
DRAIN_LOCK = "unionhub:wx:pushlog:drain-lock"
DRAIN_LOCK_SECONDS = 60
DRAIN_BATCH = 500


def send_spec(openid: str, spec: dict) -> dict:
    """Send a reply spec as a customer-service message."""
    if spec["type"] == "text":
        return gateway.send_custom_text(openid, spec["content"])
    article = spec["articles"][0]
    payload = {
        "touser": openid,
        "msgtype": "news",
        "news": {"articles": [{"title": article["title"], "description": article["description"], "url": article["url"], "picurl": article["image"]}]},
    }
    return gateway.oa_client().post("message/custom/send", data=payload)


@job
def deliver_reply(openid: str, spec: dict, push: dict | None = None) -> dict | None:
    """Deliver a bot's answer that missed the callback's time budget.

    ``push`` (``msg_type``, ``event``, ``received_at`` of the push it answers) lets the answer spend one
    message of the worker's customer-service allowance, granted by that push (see :func:`_allowance_for`).
    """
    if not _allowance_for(openid, push):
        log.warning("late reply to %s not sent: no customer-service message left in WeChat's allowance", openid)
        return None
    try:
        return send_spec(openid, spec)
    except WeChatAPIError as exc:
        if exc.kind == "permanent":  # e.g. 45015: the 48-hour window closed; nothing to retry
            log.warning("late reply to %s not delivered: %s", openid, exc)
            return None
        raise


@job
def run_bot(bot_name: str, message: dict, kwargs: dict, received_at: float | None = None) -> dict | None:
    """Run a bot registered slow=True and send its answer as a customer-service message."""
    from handlers.wechat.replies import to_spec
    from handlers.wechat.router import BotContext, router

    func = router.bots[bot_name]
    ctx = BotContext(message, get_redis(), gateway._config())
    spec = to_spec(func(ctx, **kwargs))
    db.flush()
    openid = message["FromUserName"]
    if spec is not None:
        if not _allowance_for(openid, push_facts(message, received_at)):
            log.warning("answer of %s to %s not sent: no customer-service message left", bot_name, openid)
            return spec
        send_spec(openid, spec)
    return spec


def push_facts(message: dict, received_at: float | None) -> dict | None:
    """What :func:`_allowance_for` needs of a push (None when the time it arrived is unknown)."""
    if received_at is None:
        return None
    return {"msg_type": (message.get("MsgType") or "").lower(), "event": message.get("Event"), "received_at": received_at,
            "create_time": message.get("CreateTime")}


def _allowance_for(openid: str, push: dict | None) -> bool:
    """Apply the grant of the push being answered and spend one customer-service message of it.

    The push-log drain applies the same grant later (or has already): applying one push twice changes
    nothing (``people.grant_cs``), so the message spent here stays spent.  The spend is committed before
    the send, as every delivery's claim is: at most once.  True when the answer may be sent (also for a
    sender UnionHub has no record of, and for jobs queued without ``push``).
    """
    from server.services.people import follower, grant_cs, spend_cs

    if push is None:
        return True
    person = follower(openid)
    if person is None:
        return True
    kind, at = _grant_of(push), _granted_at(push)
    if kind and at:
        grant_cs(person, kind, at)
    allowed = spend_cs(person.id)
    db.commit()
    return allowed


def _ts(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _push_row(r: dict) -> dict:
    return {
        "dedup_key": r["dedup_key"], "openid": r["openid"], "msg_type": r["msg_type"], "event": r["event"],
        "event_key": r["event_key"], "msg_id": r["msg_id"], "content": r["content"], "payload": r["payload"],
        "encrypted": r["encrypted"], "bot": r["bot"], "reply_type": r["reply_type"], "reply_preview": r["reply_preview"],
        "duration_ms": r["duration_ms"], "error": r["error"], "created_at_wechat": _ts(r["create_time"]),
        "received_at": _ts(r["received_at"]),
    }


@job
def store_pushes() -> int:
    """Move logged pushes from Redis into wechat_pushes, in batches, one drainer at a time; how many it read.

    The drainer holds redis-py's token lock (``DRAIN_LOCK_SECONDS``) and renews it after each batch's
    commit, before trimming the batch off the list: a drainer that outlived its lock (a stalled batch)
    while another took over trims nothing (the other has read the same records and stores and trims
    them itself), so no record is trimmed that nobody stored, and it releases only its own lock.
    """
    from handlers.wechat.pushlog import PUSHLOG_KEY

    redis = get_redis()
    lock = redis.lock(DRAIN_LOCK, timeout=DRAIN_LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        return 0
    stored = 0
    try:
        while True:
            raw = redis.lrange(PUSHLOG_KEY, 0, DRAIN_BATCH - 1)
            if not raw:
                break
            records = [json.loads(r) for r in raw]
            # A retried drain meets rows it already stored: the unique dedup key skips them.
            insert_ignore_many(WechatPush.__table__, [_push_row(r) for r in records], ["dedup_key"])
            _remember_interactions(records)
            db.commit()  # committed before the records leave Redis: a crash repeats, never loses
            try:
                lock.reacquire()  # still ours, for another DRAIN_LOCK_SECONDS: the trim cannot race a successor
            except LockError:
                log.warning("the push-log drain lost its lock during a batch; its successor goes on")
                break
            redis.ltrim(PUSHLOG_KEY, len(raw), -1)
            stored += len(records)
    finally:
        try:
            lock.release()
        except LockError:  # expired, or already another drainer's: not ours to delete
            pass
    return stored


# Pushes after which WeChat lets the account send customer-service messages, and how many (people.grant_cs):
# a message 20 within 48 hours; a menu click, a scan (QR code or the menu's scanner) or a follow 3 within a minute.
# VIEW (a link in the menu) and the automatic LOCATION report grant nothing.
_MESSAGES = {"text", "image", "voice", "video", "shortvideo", "location", "link"}
_EVENTS = {"click", "scan", "subscribe", "scancode_push", "scancode_waitmsg"}


def _grant_of(r: dict) -> str | None:
    from server.services.people import CS_EVENT, CS_MESSAGE

    if r["msg_type"] in _MESSAGES:
        return CS_MESSAGE
    if r["msg_type"] == "event" and (r["event"] or "").lower() in _EVENTS:
        return CS_EVENT
    return None


def _granted_at(r: dict) -> datetime | None:
    """When a push's grant starts: WeChat's CreateTime (what its window counts from, and the same for the
    follow bot, the late-answer job and the drain, so one push is granted once), never after it arrived."""
    created, received = _ts(r.get("create_time")), _ts(r.get("received_at"))
    if created is None or received is None:
        return created or received
    return min(created, received)


def _remember_interactions(records: list[dict]) -> None:
    from server.services.people import grant_cs

    grants: dict[str, list[tuple[datetime, str]]] = {}
    for r in records:
        kind, at = _grant_of(r), _granted_at(r)
        if kind and at:
            grants.setdefault(r["openid"], []).append((at, kind))
    if not grants:
        return
    for person in db.scalars(select(Person).where(Person.oa_openid.in_(list(grants)))):
        for at, kind in sorted(grants[person.oa_openid]):
            grant_cs(person, kind, at)


@job
def link_follower(oa_openid: str) -> int | None:
    """Learn a new follower's unionid and link them to the mini-program person with the same one."""
    from server.services.people import follower

    person = follower(oa_openid)
    if person is None or person.unionid:
        return person.id if person else None
    info = gateway.get_user_info(oa_openid)
    unionid = info.get("unionid")
    if not unionid:
        return person.id
    other = db.scalars(select(Person).where(Person.unionid == unionid, Person.id != person.id)).first()
    if other is None:
        person.unionid = unionid
        return person.id
    from server.services.people import merge_follower_into

    return merge_follower_into(follower=person, member=other).id
