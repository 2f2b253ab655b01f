"""Shared by the mini-program and staff REST handlers: authentication, error docs, file downloads.

Usage in a flask-smorest MethodView::

    from handlers.common import current_person, login_required

    @blp.route("")
    class Things(MethodView):
        @login_required(blp)                       # a worker's mini-program token
        @blp.response(200, ThingSchema(many=True))
        def get(self):
            return service.list_things(current_person())

    @login_required(blp, staff=True)               # a staff token (POST /api/admin/v1/auth/login)
    ...  current_staff() ...

``login_required`` goes on top of the other decorators: it checks the
``Authorization: Bearer <token>`` header before arguments are parsed
(so a missing token is a 401, not a 422), and documents the ``bearer``
security scheme and the 401 answer in the OpenAPI document.  Role and
organisation checks belong to the services (``server.services.auth``).
"""

from __future__ import annotations

import ipaddress
import json
from copy import deepcopy
from functools import wraps

import flask_smorest
import marshmallow as ma
from flask import request, send_file
from werkzeug.datastructures import CombinedMultiDict
from webargs.flaskparser import FlaskParser

from schemas.base import ErrorSchema as _BaseErrorSchema
from server.errors import HTTP_MESSAGES
from server.models import Person, Staff
from server.services import auth


class ApiErrorSchema(_BaseErrorSchema):
    """The one error shape (named apart from flask-smorest's own "Error" component)."""


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _per_request(name: str, authenticate):
    # Cached on the request, not on ``g``: ``g`` lives as long as the app context, which tests share.
    if name not in request.environ:
        request.environ[name] = authenticate(bearer_token())
    return request.environ[name]


def current_person() -> Person:
    """The logged-in worker (401 without a valid mini-program token)."""
    return _per_request("unionhub.person", lambda _token: auth.load_person(current_person_id()))


def current_person_id() -> int:
    """The logged-in worker's id (401 without a valid mini-program token), without loading the person: for views
    whose service reads the person itself, with other rows in one query (the competition sign-up)."""
    return _per_request("unionhub.person_id", auth.person_id_for)


def current_staff() -> Staff:
    """The logged-in staff member (401 without a valid staff token)."""
    return _per_request("unionhub.staff", auth.authenticate_staff)


def client_ip() -> str | None:
    """The client's address for rate limits.

    Behind nginx (deploy/nginx.conf) REMOTE_ADDR is the proxy's; the last
    X-Forwarded-For entry is the address the proxy saw, which a client cannot
    forge.  It is trusted only from a private or loopback peer (the proxy).
    """
    remote = request.remote_addr
    forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
    try:
        behind_proxy = bool(forwarded) and ipaddress.ip_address(remote or "").is_private
    except ValueError:
        behind_proxy = False
    return forwarded if behind_proxy else remote


def login_required(blp, *, staff: bool = False, load_person: bool = True):
    """Require a worker token (or a staff token with ``staff=True``) and document it.

    With ``load_person=False`` only the token is checked (no query): the view passes ``current_person_id()`` to a
    service that reads the person itself and answers 401 ``invalid_token`` when they no longer exist."""

    def decorator(func):
        @wraps(func)
        def wrapper(*args, **kwargs):
            current_staff() if staff else current_person() if load_person else current_person_id()
            return func(*args, **kwargs)

        wrapper._apidoc = deepcopy(getattr(func, "_apidoc", {}))
        wrapper = blp.alt_response(401, schema=ApiErrorSchema, description="未登录或登录已过期")(wrapper)
        return blp.doc(security=[{"bearer": []}])(wrapper)

    return decorator


def error_responses(blp, *statuses: int):
    """Document the error answers (the one error shape) a view may give, e.g. ``@error_responses(blp, 404, 409)``."""

    def decorator(func):
        for status in statuses:
            func = blp.alt_response(status, schema=ApiErrorSchema, description=HTTP_MESSAGES[status][1])(func)
        return func

    return decorator


#: URL converter for database ids: larger numbers are a 404, never a database overflow.
ID = "int(max=2147483647)"

#: ``@blp.response`` for views answering a file rather than JSON.
FILE_SCHEMA = {"type": "string", "format": "binary"}


def send_download(path_or_file, mimetype: str, filename: str, as_attachment: bool = False):
    """A private, uncached file answer that browsers will not sniff into another type."""
    response = send_file(path_or_file, mimetype=mimetype, download_name=filename, as_attachment=as_attachment,
                         max_age=0, conditional=False)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


#: JSON bodies nested deeper than this are refused (the API's own documents nest three or four levels).
MAX_JSON_DEPTH = 32


def _nested_deeper_than(value, limit: int) -> bool:
    """Whether a parsed JSON value nests more than ``limit`` arrays/objects deep (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class ApiParser(FlaskParser):
    """webargs' parser, with every unreadable JSON body a 400 ``bad_request`` (webargs answers only a syntax error
    or bad UTF-8 so): a number of more than 4,300 digits (Python's int limit), nesting deep enough to exhaust
    the decoder's recursion, or nesting deeper than ``MAX_JSON_DEPTH`` (a limit on what later code may walk)."""

    def _raw_load_json(self, req):
        try:
            data = super()._raw_load_json(req)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise  # webargs' own handling: 400 (or no body)
        except (ValueError, RecursionError) as exc:
            self._handle_invalid_json_error(exc, req)
        if _nested_deeper_than(data, MAX_JSON_DEPTH):
            self._handle_invalid_json_error(ValueError("JSON nested too deeply"), req)
        return data


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with :class:`ApiParser`: every API blueprint is one of these."""

    ARGUMENTS_PARSER = ApiParser()


class MultipartParser(ApiParser):
    """``location="files"`` reads a whole multipart body: the files and the form fields beside them.

    Set it on a blueprint (``blp.ARGUMENTS_PARSER = MultipartParser()``) and declare one schema with
    both the ``Upload`` field and the text fields; OpenAPI then shows one multipart/form-data body.
    """

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "files": ma.RAISE}

    def load_files(self, req, schema):
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)
