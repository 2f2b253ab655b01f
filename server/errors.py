"""One JSON error shape for every API.

    {"code": "quota_full", "message": "名额已满", "errors": {...}}

``code`` is a stable machine-readable string, ``message`` is Chinese text the
mini-program can show as it is, ``errors`` carries field details when
validation fails.  Services raise :class:`ServiceError` (no HTTP in them);
handlers let it propagate and this module turns it into a response.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("unionhub.errors")


class ServiceError(Exception):
    """A business rule said no.  Carries its code, Chinese message and HTTP status."""

    status = 400

    def __init__(self, code: str, message: str, status: int | None = None, errors: dict | None = None, **extra):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.errors = errors
        self.extra = extra

    def to_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class NotFound(ServiceError):
    status = 404

    def __init__(self, message: str = "找不到该记录", code: str = "not_found", **kw):
        super().__init__(code, message, **kw)


class Conflict(ServiceError):
    status = 409


class Forbidden(ServiceError):
    status = 403

    def __init__(self, message: str = "无权访问该记录", code: str = "forbidden", **kw):
        super().__init__(code, message, **kw)


class Unauthorized(ServiceError):
    status = 401

    def __init__(self, message: str = "请先登录", code: str = "unauthorized", **kw):
        super().__init__(code, message, **kw)


# Chinese messages for the HTTP errors Flask or werkzeug raise on their own.
HTTP_MESSAGES = {
    400: ("bad_request", "请求格式不正确"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "无权进行此操作"),
    404: ("not_found", "请求的地址不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
    409: ("conflict", "当前状态不允许此操作"),
    413: ("payload_too_large", "上传内容过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
    422: ("validation_error", "提交的信息有误，请检查后重试"),
    429: ("too_many_requests", "操作过于频繁，请稍后再试"),
    500: ("internal_error", "服务器开小差了，请稍后再试"),
    503: ("unavailable", "服务暂时不可用，请稍后再试"),
}


#: The busy answer's Retry-After (seconds).
RETRY_AFTER_BUSY = 2
#: SQLSTATEs that mean the database cannot take a connection or a request just now (connection exceptions, too
#: many connections, shutting down, starting up): not a bug in the request.
_UNAVAILABLE_SQLSTATES = ("08", "53300", "57P01", "57P02", "57P03")


def _sqlite_busy(orig: BaseException | None) -> bool:
    import sqlite3

    return isinstance(orig, sqlite3.OperationalError) and str(orig).startswith(("database is locked", "database is busy"))


def backend_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database or Redis cannot serve right now rather than that the request went
    wrong: no connection could be made (refused, too many connections), the connection pool's wait ran out, or
    a connection was lost (SQLAlchemy then replaces the pool's connections).  Answered 503 with Retry-After."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DBAPIError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    if isinstance(exc, (PoolTimeoutError, RedisConnectionError, RedisTimeoutError)):
        return True
    if isinstance(exc, DBAPIError):
        state = getattr(exc.orig, "sqlstate", None) or ""
        if exc.connection_invalidated or state.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        if isinstance(exc, OperationalError) and _sqlite_busy(exc.orig):
            return True  # the embedded SQLite's write lock was held past its busy timeout
        # No server answered at all (refused, unreachable): a failed connect, without a statement or SQLSTATE.
        return isinstance(exc, OperationalError) and exc.statement is None and not state
    return False


def busy_response():
    """503 ``service_busy`` with Retry-After: the honest answer when the database or Redis cannot serve now."""
    response = error_response(503, "service_busy", "系统繁忙，请稍后再试")
    response.headers["Retry-After"] = str(RETRY_AFTER_BUSY)
    return response


def unexpected_response(exc: BaseException, where: str):
    """The answer to an exception nothing else handled (call it in an ``except`` block): 503 ``service_busy``
    when the database or Redis cannot serve now (logged as a warning), else a 500 in the error shape (logged
    with its traceback)."""
    if backend_unavailable(exc):
        log.warning("busy on %s: %s", where, exc)
        return busy_response()
    log.exception("unhandled error on %s", where)
    return error_response(500)


def error_response(status: int, code: str | None = None, message: str | None = None, errors=None, **extra):
    default_code, default_message = HTTP_MESSAGES.get(status, ("error", "请求失败"))
    body = {"code": code or default_code, "message": message or default_message}
    if errors:
        body["errors"] = errors
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    return response


def _flatten_marshmallow(messages) -> dict:
    """flask-smorest puts validation messages under the location (json, query...)."""
    if isinstance(messages, dict) and set(messages) <= {"json", "query", "form", "files", "headers", "path", "view_args", "cookies"}:
        merged: dict = {}
        for part in messages.values():
            if isinstance(part, dict):
                merged.update(part)
        return merged
    return messages if isinstance(messages, dict) else {"_schema": messages}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError):
        response = jsonify(exc.to_dict())
        response.status_code = exc.status
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if status == 422:
            messages = getattr(exc, "data", {}).get("messages", {}) if hasattr(exc, "data") else {}
            return error_response(422, errors=_flatten_marshmallow(messages))
        if status == 405:
            response = error_response(405)
            allowed = exc.get_response().headers.get("Allow")
            if allowed:
                response.headers["Allow"] = allowed
            return response
        if status == 413:
            return error_response(413)
        if status == 429:
            response = error_response(429)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after:
                response.headers["Retry-After"] = str(retry_after)
            return response
        code, message = HTTP_MESSAGES.get(status, ("error", "请求失败"))
        custom = getattr(exc, "data", None) or {}
        return error_response(status, custom.get("code", code), custom.get("message", message), custom.get("errors"))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        return unexpected_response(exc, f"{request.method} {request.path}")
