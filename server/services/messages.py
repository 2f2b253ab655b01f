"""Every message kind UnionHub sends, in one place, and ``notify``: the one way to tell a worker something.

A kind names its inbox text, its template keywords, its channels in order
of preference and whether it is urgent.  ``notify`` always writes the inbox
copy, then makes a :class:`~server.models.Delivery` row for the first usable
channel (and a ``skipped`` row with the reason for each channel passed
over) and enqueues ``jobs.delivery.send_deliveries`` after commit.  The job
falls back to the next channel when the chosen one turns out unusable.

Template values follow WeChat's 2023 rules: no ``first``/``remark``, no
line breaks, at most 20 characters for ``thing`` (longer free text is
shortened with "…", other keyword types that are too long are refused with
:class:`TemplateError`, and the channel is skipped with that reason).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, time as dtime

from flask import current_app
from sqlalchemy import select

from server.extensions import db
from server.models import Delivery, Person, utcnow
from server.services import consent
from server.services.inbox import deliver_inbox_message
from server.services.txn import insert_ignore
from server.timeutil import CHINA, to_local

MP_SUBSCRIBE, OA_TEMPLATE, OA_CUSTOM, WECOM_GROUP = "mp_subscribe", "oa_template", "oa_custom", "wecom_group"
DEFAULT_CHANNELS = (MP_SUBSCRIBE, OA_TEMPLATE, OA_CUSTOM)
TEMPLATE_CHANNELS = (MP_SUBSCRIBE, OA_TEMPLATE)
SEND_JOB = "jobs.delivery.send_deliveries"

#: keyword type -> (longest value, shortened rather than refused when longer)
VALUE_RULES = {"thing": (20, True), "name": (10, True), "phrase": (5, False), "symbol": (5, False),
               "character_string": (32, False), "number": (32, False), "letter": (32, False),
               "amount": (32, False), "car_number": (8, False), "phone_number": (17, False)}
DEFAULT_RULE = (20, False)  # time, date and the old keyword1.. fields
FORBIDDEN_KEYS = ("first", "remark")
WEBHOOK_LIMITS = {"text": 2048, "markdown": 4096}  # bytes of content per WeCom group-bot message
CUT_NOTE = "\n…（内容过长，已截断）"


class TemplateError(ValueError):
    """Template data WeChat would refuse; ``str(exc)`` is the recorded reason."""


@dataclass(frozen=True)
class Kind:
    title: str  # inbox title, first line of a customer-service text
    body: str  # inbox body and customer-service text; str.format over the context
    data: dict  # template keyword -> str.format pattern (same keywords on both template channels)
    link: str | None = None  # mini-program page pattern
    channels: tuple = DEFAULT_CHANNELS
    urgent: bool = False


_APP = "/pages/subsidy/application?id={application_id}"
_ENTRY = "/pages/competition/detail?id={competition_id}"
_SUBSIDY = {"thing1": "{program}", "phrase2": "{state}", "time3": "{when}"}
_COMPETITION = {"thing1": "{competition}", "phrase2": "{state}", "time3": "{when}"}

KINDS: dict[str, Kind] = {
    "application_submitted": Kind("补助申请已提交", "您的{program}申请已提交，请耐心等待审核。", _SUBSIDY, _APP),
    "application_returned": Kind("补助申请需补充材料", "您的{program}申请被退回补充材料：{reason}。请在{deadline}前补充后重新提交。",
                                 {**_SUBSIDY, "thing4": "{reason}"}, _APP),
    "application_expiring": Kind("补充材料即将到期", "您的{program}申请需在{deadline}前补充材料并重新提交，逾期申请将失效。",
                                 {**_SUBSIDY, "time3": "{deadline}"}, _APP, urgent=True),
    "application_expired": Kind("补助申请已失效", "您的{program}申请未在期限内补充材料，已失效。", _SUBSIDY, _APP),
    "application_approved": Kind("补助申请已核准", "您的{program}申请已核准，核定金额{amount}元，将尽快发放。",
                                 {**_SUBSIDY, "amount4": "{amount}元"}, _APP),
    "application_rejected": Kind("补助申请未通过", "您的{program}申请未通过审核：{reason}。",
                                 {**_SUBSIDY, "thing4": "{reason}"}, _APP),
    "application_paid": Kind("补助已发放", "您的{program}补助{amount}元已发放，请注意查收。",
                             {**_SUBSIDY, "amount4": "{amount}元"}, _APP),
    "application_payment_failed": Kind("补助发放失败", "您的{program}补助发放未成功：{reason}。工作人员将与您联系。",
                                       {**_SUBSIDY, "thing4": "{reason}"}, _APP),
    "competition_confirmed": Kind("报名审核通过", "您报名的{competition}已确认，比赛时间{starts}。", _COMPETITION, _ENTRY),
    "competition_waitlisted": Kind("已进入候补名单", "{competition}名额已满，您在候补名单第{position}位。", _COMPETITION, _ENTRY),
    "competition_offered": Kind("候补递补通知", "{competition}有名额空出，请在{deadline}前确认参赛。",
                                {**_COMPETITION, "time3": "{deadline}"}, _ENTRY, urgent=True),
    "competition_reminder": Kind("比赛即将开始", "{competition}将于{starts}开始，地点：{venue}。",
                                 {**_COMPETITION, "time3": "{starts}", "thing4": "{venue}"}, _ENTRY),
    "competition_result": Kind("比赛成绩公布", "{competition}成绩已公布：{result}。",
                               {**_COMPETITION, "thing4": "{result}"}, _ENTRY),
    # Entry notices written by the competitions area (title and body come from the context).
    "competition_notice": Kind("{title}", "{body}", {"thing1": "{competition}", "thing2": "{state}", "time3": "{when}"}, _ENTRY),
    "competition_notice_urgent": Kind("{title}", "{body}", {"thing1": "{competition}", "thing2": "{state}",
                                                            "time3": "{deadline}"}, _ENTRY, urgent=True),
    "announcement": Kind("{title}", "{body}", {"thing1": "{title}", "time2": "{when}"}, "{link}",
                         channels=(OA_TEMPLATE, MP_SUBSCRIBE, OA_CUSTOM)),
    "announcement_group": Kind("{title}", "{body}", {}, channels=(WECOM_GROUP,)),
}


def kind_of(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown message kind {kind!r}") from None


def _config():
    return current_app.extensions["unionhub"]["config"]


def template_id(kind: str, channel: str) -> str:
    """MESSAGE_TEMPLATE_IDS (``kind.channel=id,...``) or the development default ``<channel>_<kind>``."""
    overrides = dict(item.strip().split("=", 1) for item in _config().MESSAGE_TEMPLATE_IDS.split(",") if "=" in item)
    return overrides.get(f"{kind}.{channel}") or f"{channel}_{kind}"


def _fill(pattern: str | None, context: dict) -> str:
    return pattern.format_map(defaultdict(str, context)) if pattern else ""


def check_data(data: dict) -> tuple[dict, list[str]]:
    """Template data within WeChat's rules, and notes on what was changed; TemplateError if it cannot be."""
    out, notes = {}, []
    for key, value in data.items():
        if key in FORBIDDEN_KEYS:
            raise TemplateError(f"{key} is no longer allowed")
        value = str(value)
        if re.search(r"[\r\n]", value):
            value = re.sub(r"\s*[\r\n]+\s*", " ", value).strip()
            notes.append(f"{key}: line breaks removed")
        if not value:
            raise TemplateError(f"{key} is empty")
        limit, shorten = VALUE_RULES.get(re.sub(r"\d+$", "", key), DEFAULT_RULE)
        if len(value) > limit:
            if not shorten:
                raise TemplateError(f"{key} longer than {limit}")
            value = value[:limit - 1] + "…"
            notes.append(f"{key}: shortened to {limit}")
        out[key] = value
    return out, notes


def cut_bytes(text: str, limit: int, note: str = CUT_NOTE) -> tuple[str, bool]:
    """``text`` within ``limit`` UTF-8 bytes (cut with ``note`` when longer)."""
    if len(text.encode()) <= limit:
        return text, False
    room = limit - len(note.encode())
    return text.encode()[:room].decode("utf-8", "ignore") + note, True


def render(kind: str, channel: str, context: dict) -> dict:
    """The payload a Delivery of ``kind`` on ``channel`` carries (TemplateError for data WeChat refuses)."""
    spec = kind_of(kind)
    title, body, link = _fill(spec.title, context), _fill(spec.body, context), _fill(spec.link, context) or None
    if channel in TEMPLATE_CHANNELS:
        data, notes = check_data({k: _fill(p, context) for k, p in spec.data.items()})
        payload = {"template_id": template_id(kind, channel), "data": data, "page": link}
        return {**payload, "notes": notes} if notes else payload
    if channel == OA_CUSTOM:
        return {"text": cut_bytes(f"{title}\n{body}", 2000)[0]}
    if channel == WECOM_GROUP:
        msgtype = context.get("msgtype") or "markdown"
        content = f"**{title}**\n{body}" if msgtype == "markdown" else f"{title}\n{body}"
        content, cut = cut_bytes(content, WEBHOOK_LIMITS[msgtype])
        return {"msgtype": msgtype, msgtype: {"content": content}, **({"notes": ["content cut"]} if cut else {})}
    if channel == "inbox":
        return {"title": title[:128], "body": body, "link": link}
    raise ValueError(f"unknown channel {channel!r}")


# -- channel choice ------------------------------------------------------------------------------

def unusable(person, kind: str, channel: str, now: datetime, has_consent=None, spend_cs=None) -> str | None:
    """Why ``person`` (a Person or any row with its openid and follow fields) cannot get ``kind`` on ``channel``.

    ``has_consent`` checks the subscribe-message consent and ``spend_cs`` the customer-service allowance; by
    default both are only read, the send job passes functions that spend one.
    """
    if channel == MP_SUBSCRIBE:
        if not person.mp_openid:
            return "no_openid"
        if has_consent is None:
            left, long_term = consent.remaining(person.id, template_id(kind, channel))
            return None if long_term or left > 0 else "no_consent"
        return None if has_consent() else "no_consent"
    if not person.oa_openid:
        return "no_openid"
    if not person.oa_subscribed:
        return "not_following"
    if channel == OA_CUSTOM:  # WeChat's allowance after the worker's last message, click or scan (people.grant_cs)
        until = person.oa_cs_until
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=now.tzinfo)
        if not (until and now < until and person.oa_cs_left > 0):
            return "outside_window"
        return None if spend_cs is None or spend_cs() else "outside_window"
    return None


def choose_channel(person: Person, kind: str, now: datetime | None = None,
                   after: str | None = None) -> tuple[str | None, list[tuple[str, str]]]:
    """The first usable channel of ``kind`` for ``person`` (after ``after``), and (channel, reason) for those passed over."""
    now = now or utcnow()
    channels = list(kind_of(kind).channels)
    if after is not None:
        channels = channels[channels.index(after) + 1:] if after in channels else []
    skipped = []
    for channel in channels:
        reason = unusable(person, kind, channel, now)
        if reason is None:
            return channel, skipped
        skipped.append((channel, reason))
    return None, skipped


def plan(person: Person, kind: str, context: dict, now: datetime,
         after: str | None = None) -> tuple[str | None, dict | None, list[tuple[str, str]]]:
    """choose_channel plus render: a channel whose data WeChat would refuse is skipped with the reason."""
    skipped: list[tuple[str, str]] = []
    while True:
        channel, passed = choose_channel(person, kind, now, after)
        skipped += passed
        if channel is None:
            return None, None, skipped
        try:
            return channel, {**render(kind, channel, context), "context": context}, skipped
        except TemplateError as exc:
            skipped.append((channel, f"invalid_data: {exc}"[:64]))
            after = channel


# -- quiet hours ---------------------------------------------------------------------------------

def _hhmm(text: str) -> dtime:
    hh, mm = text.split(":")
    return dtime(int(hh), int(mm))


def quiet_until(now: datetime, urgent: bool) -> datetime | None:
    """The end of the quiet hours (QUIET_HOURS, China time) if ``now`` falls in them and the message can wait."""
    if urgent:
        return None
    start, end = (_hhmm(p) for p in _config().QUIET_HOURS.split("-"))
    local = to_local(now)
    t = local.time().replace(tzinfo=None)
    quiet = start <= t < end if start <= end else (t >= start or t < end)
    if not quiet or start == end:
        return None
    until = datetime.combine(local.date(), end, tzinfo=CHINA)
    return (until if until > local else until + timedelta(days=1)).astimezone(now.tzinfo or CHINA)


# -- notify --------------------------------------------------------------------------------------

def plain(context: dict) -> dict:
    """The context as JSON-safe values (it is stored on the delivery for fall-back rendering)."""
    return {k: v if isinstance(v, (str, int, float, bool)) or v is None else str(v) for k, v in context.items()}


def dedup_key(kind: str, dedup: str, channel: str) -> str:
    return f"{kind}:{dedup}:{channel}"


def add_delivery(values: dict) -> bool:
    """Insert one delivery row unless its dedup_key exists; True when inserted now."""
    now = utcnow()
    row = {"payload": {}, "urgent": False, "status": "pending", "attempts": 0, "created_at": now, "updated_at": now,
           **values}
    return insert_ignore(Delivery.__table__, row, ["dedup_key"]) == 1


def delivery_rows(person_id: int | None, kind: str, dedup: str, channel: str | None, payload: dict | None,
                  skipped: list[tuple[str, str]], urgent: bool, hold: datetime | None, **extra) -> list[dict]:
    """Row values for a chosen channel (pending) and the channels passed over (skipped)."""
    base = {"person_id": person_id, "kind": kind, "urgent": urgent, **extra}
    rows = [{**base, "dedup_key": dedup_key(kind, dedup, c), "channel": c, "status": "skipped", "skip_reason": r}
            for c, r in skipped]
    if channel:
        rows.append({**base, "dedup_key": dedup_key(kind, dedup, channel), "channel": channel, "payload": payload,
                     "not_before": hold})
    return rows


def enqueue_send(ids: list[int], urgent: bool = False) -> None:
    if ids:
        from jobs.queues import DEFAULT, HIGH, enqueue_after_commit

        enqueue_after_commit(SEND_JOB, ids, queue=HIGH if urgent else DEFAULT)


def notify(person_id: int, kind: str, context: dict, dedup: str, urgent: bool | None = None) -> list[int]:
    """Tell a worker: the inbox copy now, a WeChat delivery row enqueued after commit.  Returns delivery ids.

    Idempotent per (kind, dedup): a second call finds the inbox copy and only answers the existing ids.
    """
    spec = kind_of(kind)
    person = db.get(Person, person_id)
    if person is None:
        raise ValueError(f"no person {person_id}")
    context = plain(context)
    urgent = spec.urgent if urgent is None else urgent
    keys = [dedup_key(kind, dedup, c) for c in spec.channels]
    inbox = render(kind, "inbox", context)
    if deliver_inbox_message(person_id, kind[:32], inbox["title"], inbox["body"], f"{kind}:{dedup}", inbox["link"]):
        now = utcnow()
        hold = quiet_until(now, urgent)
        channel, payload, skipped = plan(person, kind, context, now)
        for row in delivery_rows(person_id, kind, dedup, channel, payload, skipped, urgent, hold):
            add_delivery(row)
        if channel and hold is None:
            pending = db.scalar(select(Delivery.id).where(Delivery.dedup_key == dedup_key(kind, dedup, channel),
                                                          Delivery.status == "pending"))
            enqueue_send([pending] if pending else [], urgent)
    return list(db.scalars(select(Delivery.id).where(Delivery.dedup_key.in_(keys)).order_by(Delivery.id)))


def notify_group(org_id: int, kind: str, context: dict, dedup: str, urgent: bool | None = None) -> int | None:
    """Post ``kind`` once to an organisation's WeCom group bot (a ``wecom_group`` delivery); its id."""
    spec = kind_of(kind)
    urgent = spec.urgent if urgent is None else urgent
    key = dedup_key(kind, dedup, WECOM_GROUP)
    hold = quiet_until(utcnow(), urgent)
    if add_delivery({"dedup_key": key, "org_id": org_id, "kind": kind, "channel": WECOM_GROUP, "urgent": urgent,
                     "payload": render(kind, WECOM_GROUP, plain(context)), "not_before": hold}):
        delivery_id = db.scalar(select(Delivery.id).where(Delivery.dedup_key == key))
        if hold is None:
            enqueue_send([delivery_id], urgent)
        return delivery_id
    return db.scalar(select(Delivery.id).where(Delivery.dedup_key == key))
