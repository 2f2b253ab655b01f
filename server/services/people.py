"""People and their WeChat identities: following, unfollowing, binding a follower to a member record."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from server.extensions import db, get_redis
from server.models import Person

from .audit import record_audit
from .txn import insert_ignore

BIND_CODE_TTL = 600
BIND_MAX_FAILURES = 5
BIND_FAILURE_WINDOW = 3600


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- WeChat's customer-service allowance ------------------------------------------------------------------------
# A worker's message lets the account send 20 customer-service messages within 48 hours; a menu click, a QR scan
# or a follow only 3 within a minute (WECHAT_CS_MESSAGE_GRANT / WECHAT_CS_EVENT_GRANT).  A new grant replaces the
# current one unless the current one lasts longer; every customer-service send spends one (spend_cs).
CS_MESSAGE, CS_EVENT = "WECHAT_CS_MESSAGE_GRANT", "WECHAT_CS_EVENT_GRANT"


def grant_cs(person: Person, kind: str, at: datetime, config=None) -> None:
    """Apply the grant of a push of ``kind`` (CS_MESSAGE or CS_EVENT) received ``at``.

    One conditional UPDATE, so the rule holds against the row as it is when written, not as it was read: a
    later push renews the grant; a shorter one still applies when none is left; the same push applied twice
    (the late-answer job and the push-log drain both do, maybe at once) changes nothing the second time and
    never hands back a message spent meanwhile.  ``person`` gets the row's values as written (RETURNING).
    """
    seconds, count = (config or current_app.extensions["unionhub"]["config"]).cs_grant(kind)
    until = at + timedelta(seconds=seconds)
    renew = or_(Person.oa_cs_until.is_(None), Person.oa_cs_until < until,
                and_(Person.oa_cs_until > until, Person.oa_cs_left <= 0))
    later = or_(Person.oa_last_interaction_at.is_(None), Person.oa_last_interaction_at < at)
    written = (Person.oa_cs_until, Person.oa_cs_left, Person.oa_last_interaction_at)
    row = db.execute(update(Person).where(Person.id == person.id).values(
        oa_cs_until=case((renew, until), else_=Person.oa_cs_until),
        oa_cs_left=case((renew, count), else_=Person.oa_cs_left),
        oa_last_interaction_at=case((later, at), else_=Person.oa_last_interaction_at),
    ).returning(*written).execution_options(synchronize_session=False)).one()
    for column, value in zip(written, row):  # the row as written, without reading it again
        set_committed_value(person, column.key, value)


def spend_cs(person_id: int, now: datetime | None = None) -> bool:
    """Take one customer-service message from the person's allowance; False when none is left (or it expired)."""
    now = now or _now()
    result = db.execute(update(Person).where(Person.id == person_id, Person.oa_cs_left > 0, Person.oa_cs_until > now)
                        .values(oa_cs_left=Person.oa_cs_left - 1).execution_options(synchronize_session=False))
    return result.rowcount == 1


def follower(oa_openid: str) -> Person | None:
    return db.scalars(select(Person).where(Person.oa_openid == oa_openid)).first()


def follow(oa_openid: str, at: datetime | None = None) -> tuple[Person, bool]:
    """Record a follow; create a bare person for a new follower.  Returns (person, is_new).

    The bare person is inserted unless the openid exists (two pushes of a new follower at once create one).
    """
    person = follower(oa_openid)
    is_new = False
    if person is None:
        is_new = insert_ignore(Person.__table__, {"oa_openid": oa_openid}, ["oa_openid"]) == 1
        person = follower(oa_openid)
    person.oa_subscribed = True
    person.oa_subscribed_at = at or _now()
    # Granted at the push's own time (WeChat's CreateTime), as the push-log drain grants it again later:
    # the same push then changes nothing (grant_cs).
    grant_cs(person, CS_EVENT, min(at, _now()) if at else _now())
    db.flush()
    return person, is_new


def unfollow(oa_openid: str, at: datetime | None = None) -> Person | None:
    """Mark the person unreachable through the Official Account."""
    person = follower(oa_openid)
    if person is not None:
        person.oa_subscribed = False
        person.oa_unsubscribed_at = at or _now()
        db.flush()
    return person


def merge_follower_into(*, follower: Person, member: Person) -> Person:
    """Give ``member`` the follower's Official Account identity and drop the bare follower record."""
    if follower.id == member.id:
        return member
    if follower.bound:
        raise ValueError("both records carry member data; merge them by hand")
    openid, subscribed = follower.oa_openid, follower.oa_subscribed
    sub_at, unsub_at, last = follower.oa_subscribed_at, follower.oa_unsubscribed_at, follower.oa_last_interaction_at
    cs_until, cs_left = follower.oa_cs_until, follower.oa_cs_left
    unionid = follower.unionid
    db.delete(follower)
    db.flush()  # frees the unique openid before the member takes it
    member.oa_openid = openid
    member.oa_subscribed = subscribed
    member.oa_subscribed_at = sub_at
    member.oa_unsubscribed_at = unsub_at
    member.oa_last_interaction_at = last
    member.oa_cs_until, member.oa_cs_left = cs_until, cs_left
    if unionid and not member.unionid:
        member.unionid = unionid
    db.flush()
    record_audit(member, "person.oa_linked", "person", member.id, org_id=member.org_id, details={"via": "merge"})
    return member


# -- binding: a follower proves who they are ---------------------------------------------------


def _failures_key(oa_openid: str) -> str:
    return f"unionhub:wx:bind-failures:{oa_openid}"


def binding_locked(oa_openid: str) -> bool:
    return int(get_redis().get(_failures_key(oa_openid)) or 0) >= BIND_MAX_FAILURES


def record_binding_failure(oa_openid: str) -> int:
    redis = get_redis()
    pipe = redis.pipeline()
    pipe.incr(_failures_key(oa_openid))
    pipe.expire(_failures_key(oa_openid), BIND_FAILURE_WINDOW, nx=True)
    return int(pipe.execute()[0])


def tries_left(oa_openid: str) -> int:
    return max(0, BIND_MAX_FAILURES - int(get_redis().get(_failures_key(oa_openid)) or 0))


def find_member(real_name: str, last_digits: str) -> Person | None:
    """The one member whose name matches and whose phone or ID number ends with ``last_digits``."""
    last_digits = last_digits.strip().upper()
    if len(last_digits) < 4:
        return None
    cipher = current_app.extensions["unionhub"]["id_cipher"]
    matches = []
    for person in db.scalars(select(Person).where(Person.real_name == real_name.strip())):
        id_number = cipher.decrypt(person.id_number_enc) or ""
        if (person.phone or "").endswith(last_digits) or id_number.endswith(last_digits):
            matches.append(person)
    return matches[0] if len(matches) == 1 else None


def bind_follower(oa_openid: str, member: Person) -> Person:
    """Link the follower ``oa_openid`` to ``member`` (refused when the member has another OA identity).

    The member row is locked and re-read first, so two followers binding the same member at
    once cannot both pass the check and the second silently replace the first.
    """
    db.refresh(member, with_for_update=True)
    if member.oa_openid == oa_openid:
        return member
    if member.oa_openid and member.oa_openid != oa_openid:
        raise ValueError("member already bound to another WeChat account")
    bare = follower(oa_openid)
    if bare is None:
        member.oa_openid = oa_openid
        member.oa_subscribed = True
        member.oa_subscribed_at = _now()
        db.flush()
        record_audit(member, "person.oa_linked", "person", member.id, org_id=member.org_id, details={"via": "bind"})
        return member
    return merge_follower_into(follower=bare, member=member)


def issue_binding_code(person_id: int) -> str:
    """A six-digit one-time code the mini-program shows; typing “绑定 123456” in the account binds."""
    redis = get_redis()
    for _ in range(10):
        code = f"{secrets.randbelow(10**6):06d}"
        if redis.set(f"unionhub:wx:bind-code:{code}", person_id, nx=True, ex=BIND_CODE_TTL):
            return code
    raise RuntimeError("could not allocate a binding code")


def redeem_binding_code(code: str) -> int | None:
    """The person id behind a one-time code; the code is spent."""
    raw = get_redis().getdel(f"unionhub:wx:bind-code:{code.strip()}")
    return int(raw) if raw else None
