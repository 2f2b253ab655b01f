"""/wechat: the Official Account callback.

GET answers WeChat's URL verification (echostr), as a Flask view.  POST is served by
:class:`CallbackEndpoint` straight from WSGI, in front of Flask's dispatch, and handles a push:

1. refuse a body over the size cap (413), a timestamp outside the window or
   a bad signature (403) — nothing is handled;
2. decrypt in safe/compatible mode (``encrypt_type=aes``, ``msg_signature``),
   after refusing any DTD or entity declaration (no DTDs, no entities:
   hostile XML gets 400, never a parse); see ``server/wechat/wire.py``;
3. claim the push in Redis under FromUserName + MsgId (or FromUserName +
   CreateTime + Event): ``SET NX GET`` takes the claim if it is free (and a
   ``GET`` in the same round trip reads the sender's pending conversation),
   or returns what the claim holds; a retry of a push that is being or has
   been handled waits briefly for, and returns, the same reply — its bot
   never runs twice (``claims.py``);
4. route to a bot and run it within a time budget; a bot that overruns is
   left to finish in the background and its answer is delivered by an RQ
   job as a customer-service message, while WeChat gets a short "处理中"
   reply at once.  Bots registered ``slow=True`` always run as a job;
5. store the answer under the claim and log the push (who, what, which bot,
   how long): the log is a Redis list that a job stores in the database in
   batches.  The store travels with the process's next claim (or within
   ``WECHAT_STORE_DEFER_MS``), so under load a push costs one Redis round trip.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import parse_qsl

from flask import Blueprint, Response, current_app, request

from server.errors import unexpected_response
from server.extensions import db, get_redis, request_id
from server.wechat.wire import (
    InvalidAppIdException,
    InvalidSignatureException,
    MessageCrypto,
    parse_xml,
    signature_ok,
)

from . import bots  # noqa: F401  (registers the bots)
from . import replies
from .claims import PushClaims
from .pushlog import push_record, queue_drain
from .router import NOT_FETCHED, BotContext, Route, conversation_key, router

log = logging.getLogger("unionhub.wechat.callback")
blp = Blueprint("wechat", __name__)

RETRY_WAIT = 3.0  # how long a retry waits for the first attempt's answer
_executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="bot")


def _cfg():
    return current_app.extensions["unionhub"]["config"]


def _forbidden(code: str) -> Response:
    return Response(code, status=403, mimetype="text/plain")


def _timestamp_ok(timestamp: str, cfg=None) -> bool:
    try:
        return abs(time.time() - int(timestamp)) <= (cfg or _cfg()).WECHAT_CALLBACK_MAX_AGE
    except (TypeError, ValueError):
        return False


def _signature_ok(signature: str, timestamp: str, nonce: str, cfg=None) -> bool:
    return signature_ok((cfg or _cfg()).WECHAT_OA_TOKEN, signature or "", timestamp or "", nonce or "")


def _query(environ: dict) -> dict[str, str]:
    """The query string's parameters (the first value of each), as ``request.args`` would give them,
    without building werkzeug's MultiDict (WeChat's parameters are a handful of ASCII values)."""
    raw = environ.get("QUERY_STRING") or ""
    if not raw.isascii():  # WSGI passes the raw bytes as latin-1
        raw = raw.encode("latin-1").decode("utf-8", "replace")
    if "%" in raw or "+" in raw:  # escapes: the standard library decodes them
        pairs = parse_qsl(raw, keep_blank_values=True)
    else:  # WeChat's own query strings (digits, letters, "_"): split, as parse_qsl would
        pairs = [part.partition("=")[::2] for part in raw.split("&") if part]
    args: dict[str, str] = {}
    for name, value in pairs:
        args.setdefault(name, value)
    return args


@blp.get("/wechat")
def verify():
    args = request.args
    if not _timestamp_ok(args.get("timestamp", "")):
        return _forbidden("stale_timestamp")
    if not _signature_ok(args.get("signature", ""), args.get("timestamp", ""), args.get("nonce", "")):
        return _forbidden("bad_signature")
    return Response(args.get("echostr", ""), mimetype="text/plain")


def _safe_xml(raw: bytes | str) -> dict:
    """A push's fields: WeChat XML with the root ``<xml>``, DTDs and entities refused (see ``wire.parse_xml``)."""
    message = parse_xml(raw).get("xml")
    if not isinstance(message, dict):
        raise ValueError("the root element must be <xml>")
    return message


def _crypto(ext: dict | None = None) -> MessageCrypto:
    """The app's MessageCrypto, built once (it is used twice per safe-mode push)."""
    ext = ext or current_app.extensions["unionhub"]
    crypto = ext.get("oa_crypto")
    if crypto is None:
        cfg = ext["config"]
        crypto = ext["oa_crypto"] = MessageCrypto(cfg.WECHAT_OA_TOKEN, cfg.WECHAT_OA_AES_KEY, cfg.WECHAT_OA_APPID)
    return crypto


def _claims(ext: dict) -> PushClaims:
    """The app's PushClaims (the claim and store calls), built once."""
    claims = ext.get("wx_claims")
    if claims is None:
        redis = ext["redis"]
        claims = ext["wx_claims"] = PushClaims(redis, defer=ext["config"].WECHAT_STORE_DEFER_MS / 1000,
                                               on_drain_flag=lambda: queue_drain(redis))
    return claims


def dedup_key(message: dict) -> str:
    sender = message.get("FromUserName", "")
    msg_id = message.get("MsgId") or message.get("MsgID")
    if (message.get("MsgType") or "").lower() != "event" and msg_id:
        return f"{sender}:{msg_id}"
    # WeChat's documented key is FromUserName + CreateTime + Event; EventKey is added so
    # that two different codes scanned within one second are not taken for a retry.
    return f"{sender}:{message.get('CreateTime', '')}:{message.get('Event', '')}:{str(message.get('EventKey') or '')[:64]}"


class CallbackEndpoint:
    """``POST /wechat`` served straight from WSGI, in front of Flask's dispatch.

    The callback is UnionHub's hottest path and uses nothing of Flask's request machinery
    (no URL variables, sessions, schemas or error pages: it reads the raw body and the query
    string and answers text or XML), which costs a push more than everything it does with
    Redis.  So the app's WSGI callable hands ``POST /wechat`` to :func:`receive` inside an
    app context (``current_app``, the database session and its teardown work as in a view)
    and passes every other request on to Flask.  The unit-of-work rules are the view's: the
    bots commit their own work; a failure rolls back, Redis or the database being unavailable
    answers 503 ``service_busy`` (WeChat retries), anything else a 500 in the error shape.
    Every answer carries ``X-Request-ID`` (the proxy's, or a new one) like Flask's.
    """

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != "/wechat" or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
        with self.app.app_context():
            try:
                status, content_type, body = receive(environ)
            except Exception as exc:  # what a view's error handler would answer, in the error shape
                db.rollback()
                response = unexpected_response(exc, "POST /wechat")
                response.headers["X-Request-ID"] = rid
                return response(environ, start_response)
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                ("X-Request-ID", rid)])
        return [body]


_TEXT = "text/plain; charset=utf-8"
_XML = "application/xml; charset=utf-8"


def _plain(status: str, text: str) -> tuple[str, str, bytes]:
    return status, _TEXT, text.encode()


def receive(environ: dict) -> tuple[str, str, bytes]:
    """One push: (status line, content type, body)."""
    started = time.perf_counter()
    ext = current_app.extensions["unionhub"]
    cfg = ext["config"]
    limit = cfg.WECHAT_CALLBACK_MAX_BYTES
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0:
        return _plain("400 BAD REQUEST", "bad_request")
    if length > limit:
        return _plain("413 REQUEST ENTITY TOO LARGE", "payload_too_large")
    # As werkzeug's get_input_stream reads it, without its wrapper: no more than CONTENT_LENGTH;
    # a chunked body only where the server ends the stream (wsgi.input_terminated); else none.
    if length:
        body = environ["wsgi.input"].read(length)
    elif environ.get("wsgi.input_terminated"):
        body = environ["wsgi.input"].read(limit + 1)
    else:
        body = b""
    if len(body) > limit:
        return _plain("413 REQUEST ENTITY TOO LARGE", "payload_too_large")
    args = _query(environ)
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    if not _timestamp_ok(timestamp, cfg):
        return _plain("403 FORBIDDEN", "stale_timestamp")
    # Plaintext and compatible mode both carry `signature`; safe mode is checked by msg_signature.
    encrypted = args.get("encrypt_type", "raw").lower() == "aes"
    if not encrypted and not _signature_ok(args.get("signature", ""), timestamp, nonce, cfg):
        return _plain("403 FORBIDDEN", "bad_signature")
    try:
        if encrypted:
            envelope = _safe_xml(body)
            plain = _crypto(ext).decrypt(envelope["Encrypt"], args.get("msg_signature", ""), timestamp, nonce)
            message = _safe_xml(plain)
        else:
            message = _safe_xml(body)
    except (InvalidSignatureException, InvalidAppIdException):
        return _plain("403 FORBIDDEN", "bad_signature")
    except (ValueError, KeyError, TypeError) as exc:  # malformed XML and UnicodeDecodeError are ValueErrors
        log.info("refused a malformed push: %s", type(exc).__name__)
        return _plain("400 BAD REQUEST", "bad_request")
    except Exception:  # anything else a hostile ciphertext might provoke is bad input too
        log.info("refused an undecryptable push", exc_info=True)
        return _plain("400 BAD REQUEST", "bad_request")
    if not message.get("FromUserName") or not message.get("MsgType"):
        return _plain("400 BAD REQUEST", "bad_request")

    spec = handle_push(message, encrypted, started)
    if spec is None:
        return _plain("200 OK", "success")
    xml = replies.render_xml(spec, message)
    if encrypted:
        xml = _crypto(ext).encrypt(xml, nonce, timestamp)
    return "200 OK", _XML, xml.encode()


def handle_push(message: dict, encrypted: bool, started: float) -> dict | None:
    """Claim, route, run and log one push; return the reply spec (None means `success`)."""
    ext = current_app.extensions["unionhub"]
    redis, claims = ext["redis"], _claims(ext)
    key = dedup_key(message)
    claim_key = f"unionhub:wx:push:{key}"
    received_at = time.time()
    # A text message is routed by the sender's pending conversation first: read it with the claim.
    is_text = (message.get("MsgType") or "").lower() == "text"
    claimed, held = claims.claim(claim_key, conversation_key(message.get("FromUserName", "")) if is_text else None)
    if not claimed:
        return _answer_of_retry(redis, claim_key, held)
    conversation = held if is_text else NOT_FETCHED

    route, spec, error = None, None, None
    try:
        ctx = BotContext(message, redis, ext["config"], conversation=conversation)
        route = router.resolve(ctx)
        spec = _run(route, message, received_at)
    except Exception as exc:  # routing itself failed: answer politely, never 5xx
        log.exception("bot routing failed for %s", key)
        error = type(exc).__name__
        spec = replies.to_spec(replies.BUSY_TEXT)
    duration_ms = (time.perf_counter() - started) * 1000
    record = push_record(message, key, encrypted, route.name if route else None, spec, duration_ms, error, received_at)
    claims.store(claim_key, replies.dumps(spec), record)
    return spec


def _answer_of_retry(redis, claim_key: str, held) -> dict | None:
    """The first attempt's answer: ``held`` is what the claim held ("" while that attempt still runs)."""
    deadline = time.monotonic() + RETRY_WAIT
    raw = held
    while True:
        if raw:  # "" while the first attempt runs, the reply's JSON once it answered
            return replies.loads(raw)
        if raw is None or time.monotonic() > deadline:
            return None
        time.sleep(0.05)
        raw = redis.get(claim_key)


def _run(route: Route, message: dict, received_at: float) -> dict | None:
    if route.inline:
        return _run_inline(route, message)
    from jobs import queues
    from jobs.wechat import deliver_reply, push_facts, run_bot

    if route.slow:
        queues.enqueue(run_bot, route.name, message, route.kwargs, received_at, queue=queues.HIGH)
        return replies.to_spec(replies.DEFERRED_TEXT)
    app = current_app._get_current_object()
    future = _executor.submit(_run_in_app, app, route, message)
    budget = _cfg().WECHAT_BOT_BUDGET_MS / 1000
    try:
        return future.result(timeout=budget)
    except FutureTimeout:
        queue = queues.get_queue(queues.HIGH)
        openid = message.get("FromUserName", "")

        def _deliver_late(f):
            try:
                spec = f.result()
            except Exception:  # _run_in_app already logged it
                spec = replies.to_spec(replies.BUSY_TEXT)
            if spec is not None:
                # The answer spends one message of the allowance this push granted (jobs.wechat).
                queue.enqueue(deliver_reply, openid, spec, push_facts(message, received_at))

        future.add_done_callback(_deliver_late)
        log.warning("bot %s overran its %.0f ms budget; answering later", route.name, budget * 1000)
        return replies.to_spec(replies.DEFERRED_TEXT)


def _run_in_app(app, route: Route, message: dict) -> dict | None:
    """Run a bot in its own app context and unit of work (it runs on a pool thread)."""
    with app.app_context():
        try:
            return _run_bot(route, message, app.extensions["unionhub"]["config"])
        finally:
            db.remove()


def _run_inline(route: Route, message: dict) -> dict | None:
    """Run a bot registered ``inline=True`` (no I/O, cannot overrun) on the request's thread.

    Handing a bot to the pool and waiting for it costs two thread switches under the GIL,
    a large share of a short push's CPU time under load; a bot that only returns a
    constant or formats the push needs no budget.  Same unit of work as on the pool.
    """
    return _run_bot(route, message, _cfg())


def _run_bot(route: Route, message: dict, config) -> dict | None:
    try:
        ctx = BotContext(message, get_redis(), config)
        spec = replies.to_spec(route.func(ctx, **route.kwargs))
        if db.registry.has():  # a bot that never touched the database has nothing to commit
            db.commit()
        return spec
    except Exception:
        db.rollback()
        log.exception("bot %s failed", route.name)
        return replies.to_spec(replies.BUSY_TEXT)

