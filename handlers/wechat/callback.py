"""/wechat: the Official Account callback.

GET answers WeChat's URL verification (echostr).  POST handles a push:

1. refuse a body over the size cap (413), a timestamp outside the window or
   a bad signature (403) — nothing is handled;
2. decrypt in safe/compatible mode (``encrypt_type=aes``, ``msg_signature``)
   with wechatpy, after refusing any DTD or entity declaration (no DTDs, no
   entities: hostile XML gets 400, never a parse);
3. claim the push in Redis with ``SET NX`` under FromUserName + MsgId (or
   FromUserName + CreateTime + Event); a retry of a push that is being or
   has been handled waits briefly for, and returns, the same reply — its
   bot never runs twice;
4. route to a bot and run it within a time budget; a bot that overruns is
   left to finish in the background and its answer is delivered by an RQ
   job as a customer-service message, while WeChat gets a short "处理中"
   reply at once.  Bots registered ``slow=True`` always run as a job;
5. log the push (who, what, which bot, how long) through a Redis list that
   a job stores in the database in batches.
"""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import xmltodict
from flask import Blueprint, Response, current_app, request
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from server.extensions import db, get_redis

from . import bots  # noqa: F401  (registers the bots)
from . import replies
from .pushlog import log_push, schedule_drain_if_needed
from .router import NOT_FETCHED, BotContext, Route, conversation_key, router

log = logging.getLogger("unionhub.wechat.callback")
blp = Blueprint("wechat", __name__)

DEDUP_TTL = 600  # WeChat retries within 15 s; keep answers long enough for any retry
RETRY_WAIT = 3.0  # how long a retry waits for the first attempt's answer
_executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="bot")


def _cfg():
    return current_app.extensions["unionhub"]["config"]


def _forbidden(code: str) -> Response:
    return Response(code, status=403, mimetype="text/plain")


def _timestamp_ok(timestamp: str) -> bool:
    try:
        return abs(time.time() - int(timestamp)) <= _cfg().WECHAT_CALLBACK_MAX_AGE
    except (TypeError, ValueError):
        return False


def _signature_ok(signature: str, timestamp: str, nonce: str) -> bool:
    try:
        check_signature(_cfg().WECHAT_OA_TOKEN, signature or "", timestamp or "", nonce or "")
        return True
    except InvalidSignatureException:
        return False


@blp.get("/wechat")
def verify():
    args = request.args
    if not _timestamp_ok(args.get("timestamp", "")):
        return _forbidden("stale_timestamp")
    if not _signature_ok(args.get("signature", ""), args.get("timestamp", ""), args.get("nonce", "")):
        return _forbidden("bad_signature")
    return Response(args.get("echostr", ""), mimetype="text/plain")


_DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def _safe_xml(raw: bytes | str) -> dict:
    """Parse WeChat XML, refusing any DTD or entity declaration before the parser sees it.

    WeChat never sends a DTD.  The byte scan refuses them outright (no entity is ever
    parsed, let alone expanded or fetched); expat with xmltodict's ``disable_entities``
    is the second line.  One parse instead of defusedxml's extra tree build: this runs
    twice per safe-mode push.
    """
    if _DTD.search(raw if isinstance(raw, bytes) else raw.encode()):
        raise ValueError("DTDs and entities are refused")
    parsed = xmltodict.parse(raw, disable_entities=True)
    message = parsed.get("xml") if isinstance(parsed, dict) else None
    if not isinstance(message, dict):
        raise ValueError("the root element must be <xml>")
    return message


def _crypto() -> WeChatCrypto:
    """The app's WeChatCrypto, built once (it is used twice per safe-mode push)."""
    ext = current_app.extensions["unionhub"]
    if "oa_crypto" not in ext:
        cfg = ext["config"]
        ext["oa_crypto"] = WeChatCrypto(cfg.WECHAT_OA_TOKEN, cfg.WECHAT_OA_AES_KEY, cfg.WECHAT_OA_APPID)
    return ext["oa_crypto"]


def dedup_key(message: dict) -> str:
    sender = message.get("FromUserName", "")
    msg_id = message.get("MsgId") or message.get("MsgID")
    if (message.get("MsgType") or "").lower() != "event" and msg_id:
        return f"{sender}:{msg_id}"
    # WeChat's documented key is FromUserName + CreateTime + Event; EventKey is added so
    # that two different codes scanned within one second are not taken for a retry.
    return f"{sender}:{message.get('CreateTime', '')}:{message.get('Event', '')}:{str(message.get('EventKey') or '')[:64]}"


@blp.post("/wechat")
def receive():
    started = time.perf_counter()
    cfg = _cfg()
    args = request.args
    if (request.content_length or 0) > cfg.WECHAT_CALLBACK_MAX_BYTES:
        return Response("payload_too_large", status=413, mimetype="text/plain")
    body = request.stream.read(cfg.WECHAT_CALLBACK_MAX_BYTES + 1)
    if len(body) > cfg.WECHAT_CALLBACK_MAX_BYTES:
        return Response("payload_too_large", status=413, mimetype="text/plain")
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    if not _timestamp_ok(timestamp):
        return _forbidden("stale_timestamp")
    # Plaintext and compatible mode both carry `signature`; safe mode is checked by msg_signature.
    encrypted = args.get("encrypt_type", "raw").lower() == "aes"
    if not encrypted and not _signature_ok(args.get("signature", ""), timestamp, nonce):
        return _forbidden("bad_signature")
    try:
        if encrypted:
            # wechatpy takes the envelope already parsed (it would otherwise parse the body again).
            envelope = _safe_xml(body)
            plain = _crypto().decrypt_message(envelope, args.get("msg_signature", ""), timestamp, nonce)
            message = _safe_xml(plain)
        else:
            message = _safe_xml(body)
    except (InvalidSignatureException, InvalidAppIdException):
        return _forbidden("bad_signature")
    except (ValueError, KeyError, TypeError, xmltodict.expat.ExpatError) as exc:
        log.info("refused a malformed push: %s", type(exc).__name__)
        return Response("bad_request", status=400, mimetype="text/plain")
    except Exception:  # a broken ciphertext (bad padding, bad base64) is bad input too
        log.info("refused an undecryptable push", exc_info=True)
        return Response("bad_request", status=400, mimetype="text/plain")
    if not message.get("FromUserName") or not message.get("MsgType"):
        return Response("bad_request", status=400, mimetype="text/plain")

    spec = handle_push(message, encrypted, started)
    xml = replies.render_xml(spec, message)
    if encrypted and xml != "success":
        xml = _crypto().encrypt_message(xml, nonce, timestamp)
    return Response(xml, mimetype="application/xml" if xml != "success" else "text/plain")


def handle_push(message: dict, encrypted: bool, started: float) -> dict | None:
    """Claim, route, run and log one push; return the reply spec (None means `success`)."""
    redis = get_redis()
    key = dedup_key(message)
    claim_key = f"unionhub:wx:push:{key}"
    conversation = NOT_FETCHED
    if (message.get("MsgType") or "").lower() == "text":
        # A text message is routed by the sender's pending conversation first: read it in the
        # same round trip as the claim (one round trip fewer; ignored when the claim fails).
        pipe = redis.pipeline(transaction=False)
        pipe.set(claim_key, "", nx=True, ex=DEDUP_TTL)
        pipe.get(conversation_key(message.get("FromUserName", "")))
        claimed, conversation = pipe.execute()
    else:
        claimed = redis.set(claim_key, "", nx=True, ex=DEDUP_TTL)
    if not claimed:
        return _answer_of_retry(redis, claim_key)

    route, spec, error = None, None, None
    try:
        ctx = BotContext(message, redis, _cfg(), conversation=conversation)
        route = router.resolve(ctx)
        spec = _run(route, message)
    except Exception as exc:  # routing itself failed: answer politely, never 5xx
        log.exception("bot routing failed for %s", key)
        error = type(exc).__name__
        spec = replies.to_spec(replies.BUSY_TEXT)
    duration_ms = (time.perf_counter() - started) * 1000
    pipe = redis.pipeline(transaction=False)
    pipe.set(claim_key, replies.dumps(spec), ex=DEDUP_TTL)
    log_push(pipe, message, key, encrypted, route.name if route else None, spec, duration_ms, error)
    results = pipe.execute()
    schedule_drain_if_needed(bool(results[-1]))
    return spec


def _answer_of_retry(redis, claim_key: str) -> dict | None:
    deadline = time.monotonic() + RETRY_WAIT
    while True:
        raw = redis.get(claim_key)
        if raw:  # "" while the first attempt runs, the reply's JSON once it answered
            return replies.loads(raw)
        if raw is None or time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def _run(route: Route, message: dict) -> dict | None:
    from jobs import queues
    from jobs.wechat import deliver_reply, run_bot

    if route.slow:
        queues.enqueue(run_bot, route.name, message, route.kwargs, queue=queues.HIGH)
        return replies.to_spec(replies.DEFERRED_TEXT)
    if route.inline:
        return _run_inline(route, message)
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
                queue.enqueue(deliver_reply, openid, spec)

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

