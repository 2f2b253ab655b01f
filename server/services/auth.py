"""Login, tokens, rate limits and staff scoping for the mini-program and staff APIs.

Tokens are random opaque strings (``secrets.token_urlsafe(32)``).  Redis keeps
only their sha256, under ``unionhub:auth:<kind>:<digest>`` with the token's
TTL, so a token expires by itself and :func:`revoke_token` (logout) ends it at
once.  The WeChat ``session_key`` is kept in the same record, encrypted, and
never leaves the server.

Handlers use :mod:`handlers.common` (``current_person()``,
``current_staff()``, ``@login_required(blp, ...)``); services receive the
resulting :class:`Person` / :class:`Staff` and use :func:`require_role`,
:func:`require_in_scope` and :func:`scope_filter` to keep staff inside their
organisation's subtree (``Organisation.path`` prefix).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import datetime, timezone

from cryptography.fernet import Fernet
from flask import current_app
from sqlalchemy import select

from server.errors import Forbidden, NotFound, ServiceError, Unauthorized
from server.extensions import after_commit, db, get_redis
from server.models import Organisation, Person, Staff, StaffRole
from server.services.staff import verify_password
from server.services.txn import savepoint_or
from server.wechat import gateway
from server.wechat.errors import WeChatAPIError

LOGIN_LIMIT = 10  # attempts per client IP
LOGIN_WINDOW = 60  # seconds
API, STAFF = "api", "staff"


def _config():
    return current_app.extensions["unionhub"]["config"]


def _token_key(kind: str, token: str) -> str:
    return f"unionhub:auth:{kind}:" + hashlib.sha256(token.encode()).hexdigest()


def _session_cipher() -> Fernet:
    key = hashlib.sha256(b"unionhub-session-key:" + _config().SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


# -- rate limits and tokens ------------------------------------------------------------------------

def rate_limit(name: str, ident: str | None, limit: int = LOGIN_LIMIT, window: int = LOGIN_WINDOW) -> None:
    """Count one attempt of ``name`` by ``ident``; over ``limit`` per ``window`` seconds -> 429."""
    key = f"unionhub:ratelimit:{name}:{ident or 'unknown'}"
    pipe = get_redis().pipeline()
    pipe.set(key, 0, ex=window, nx=True)
    pipe.incr(key)
    pipe.ttl(key)
    _, count, ttl = pipe.execute()
    if count > limit:
        raise ServiceError("too_many_requests", "操作过于频繁，请稍后再试", 429, retry_after=max(int(ttl), 1))


def issue_token(kind: str, subject: dict, ttl: int) -> str:
    """A new token for ``subject``; it becomes valid when the current transaction commits."""
    token = secrets.token_urlsafe(32)
    after_commit(db(), get_redis().set, _token_key(kind, token), json.dumps(subject), ex=ttl)
    return token


def resolve_token(kind: str, token: str | None) -> dict | None:
    raw = get_redis().get(_token_key(kind, token)) if token else None
    return json.loads(raw) if raw else None


def revoke_token(kind: str, token: str | None) -> bool:
    return bool(token) and bool(get_redis().delete(_token_key(kind, token)))


def login_expired() -> Unauthorized:
    """401 ``invalid_token``: the token is unknown or expired, or its subject no longer exists."""
    return Unauthorized("登录已过期，请重新登录", code="invalid_token")


def _token_required(kind: str, token: str | None) -> dict:
    if not token:
        raise Unauthorized()
    subject = resolve_token(kind, token)
    if subject is None:
        raise login_expired()
    return subject


# -- mini-program ----------------------------------------------------------------------------------

def link_person(openid: str, unionid: str | None) -> Person:
    """The person behind a mini-program login: by openid, else by unionid (an OA follower), else new."""
    person = db.scalar(select(Person).where(Person.mp_openid == openid))
    if person is None and unionid:
        person = db.scalar(select(Person).where(Person.unionid == unionid))
        if person is not None:
            person.mp_openid = openid
    if person is None:
        try:
            with savepoint_or(LookupError()):
                person = Person(mp_openid=openid, unionid=unionid)
                db.add(person)
        except LookupError:  # a concurrent first login created it
            person = db.scalar(select(Person).where(Person.mp_openid == openid))
    elif unionid and not person.unionid:
        person.unionid = unionid
    db.flush()
    return person


def login_worker(code: str, client_ip: str | None) -> dict:
    """Exchange a wx.login code for a token: ``{"token", "expires_in", "user": {"id", "bound"}}``."""
    rate_limit("login", client_ip)
    try:
        session = gateway.jscode2session(code)
    except WeChatAPIError as exc:
        if exc.retryable:
            raise ServiceError("wechat_unavailable", "微信服务暂时不可用，请稍后再试", 503) from exc
        raise Unauthorized("登录凭证无效或已过期，请重新登录", code="invalid_code") from exc
    person = link_person(session["openid"], session.get("unionid"))
    ttl = _config().API_TOKEN_TTL
    sealed = _session_cipher().encrypt(session["session_key"].encode()).decode()
    token = issue_token(API, {"person_id": person.id, "session_key": sealed}, ttl)
    return {"token": token, "expires_in": ttl, "user": {"id": person.id, "bound": person.bound}}


def person_id_for(token: str | None) -> int:
    """The person id of a valid mini-program token (401 otherwise): one Redis GET, no database query."""
    return _token_required(API, token)["person_id"]


def load_person(person_id: int) -> Person:
    """The person of a token's subject (401 ``invalid_token`` when they no longer exist)."""
    person = db.get(Person, person_id)
    if person is None:
        raise login_expired()
    return person


def session_key_for(token: str) -> str | None:
    """The WeChat session_key of a login (for decrypting wx.getPhoneNumber data later); server-side only."""
    subject = resolve_token(API, token)
    return _session_cipher().decrypt(subject["session_key"].encode()).decode() if subject else None


# -- staff -----------------------------------------------------------------------------------------

def login_staff(username: str, password: str, client_ip: str | None) -> dict:
    rate_limit("staff-login", client_ip)
    staff = db.scalar(select(Staff).where(Staff.username == username.strip()))
    if not verify_password(staff, password) or not staff.active:
        raise Unauthorized("用户名或密码不正确", code="invalid_credentials")
    staff.last_login_at = datetime.now(timezone.utc)
    ttl = _config().STAFF_TOKEN_TTL
    token = issue_token(STAFF, {"staff_id": staff.id}, ttl)
    return {"token": token, "expires_in": ttl, "staff": staff_view(staff)}


def authenticate_staff(token: str | None) -> Staff:
    staff = db.get(Staff, _token_required(STAFF, token)["staff_id"])
    if staff is None or not staff.active:
        raise login_expired()
    return staff


def staff_view(staff: Staff) -> dict:
    return {"id": staff.id, "username": staff.username, "display_name": staff.display_name,
            "role": staff.role, "org_id": staff.org_id, "org_name": staff.org.name}


def require_role(staff: Staff, *roles: StaffRole) -> None:
    """403 ``role_forbidden`` unless the staff member has one of ``roles`` (admin always may)."""
    if staff.role != StaffRole.ADMIN.value and staff.role not in {r.value for r in roles}:
        raise Forbidden("您的账号角色无权进行此操作", code="role_forbidden")


def require_operator(staff: Staff) -> None:
    """403 ``role_forbidden`` unless the staff member is an admin of a top-level organisation (the city federation).

    The queues and the delivery statistics are the whole system's, across every organisation: only its
    operators see them.
    """
    require_role(staff)
    if staff.org is None or staff.org.parent_id is not None:
        raise Forbidden("只有市总工会的管理员可以查看任务队列和发送统计", code="role_forbidden")


def in_scope(staff: Staff, org: Organisation | None) -> bool:
    """True when ``org`` is the staff member's organisation or lies below it."""
    return org is not None and org.is_within(staff.org)


def require_in_scope(staff: Staff, org: Organisation | None, message: str = "找不到该记录") -> None:
    """404 for records outside the staff member's subtree (their existence is not revealed)."""
    if not in_scope(staff, org):
        raise NotFound(message)


def scope_filter(staff: Staff):
    """A WHERE clause on :class:`Organisation` (join it first): the staff member's subtree."""
    return Organisation.path.startswith(staff.org.path)
