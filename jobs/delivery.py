"""Sending deliveries: ``send_deliveries(ids)`` and the ``sweep_deliveries`` cron job.

``send_deliveries`` keeps at most DELIVERY_CONCURRENCY rows in flight: it
claims that many (one conditional UPDATE, committed before any HTTP call),
hands plain dicts to a small thread pool that sends them over the pooled
HTTP session under the shared Redis rate limits, and as sends finish it
records their results and claims the next rows in the same transaction.
A worker killed at any moment leaves at most DELIVERY_CONCURRENCY rows in
``sending``; the sweep turns them ``unknown`` after the lease (never sent
again) and re-enqueues due ``pending`` rows (back-off or quiet hours over,
or a job lost with Redis).
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from flask import current_app
from redis.exceptions import RedisError

from server.extensions import db, get_redis
from server.models import utcnow
from server.services import deliveries, messages
from server.wechat import gateway, ratelimit
from server.wechat.errors import WeChatAPIError

from .base import app_config, job
from .queues import DEFAULT, enqueue_after_commit

log = logging.getLogger("unionhub.jobs.delivery")
SWEEP_BATCH = 500
SWEEP_MAX_BATCHES = 20
SWEEP_GUARD = "unionhub:delivery-sweep:{first}:{last}"
RATE_WAIT = 10.0  # seconds a send may wait for a rate-limit token before it is retried later


def _page(payload: dict) -> str | None:
    return (payload.get("page") or "").lstrip("/") or None


def _template(item: dict) -> dict:
    payload, page = item["payload"], _page(item["payload"])
    mini = {"appid": app_config().WECHAT_MP_APPID, "pagepath": page} if page else None
    return gateway.send_template(item["oa_openid"], payload["template_id"], payload["data"], miniprogram=mini)


def _subscribe(item: dict) -> dict:
    payload = item["payload"]
    return gateway.send_mp_subscribe(item["mp_openid"], payload["template_id"], payload["data"], page=_page(payload))


def _custom(item: dict) -> dict:
    return gateway.send_custom_text(item["oa_openid"], item["payload"]["text"])


def _group(item: dict) -> dict:
    msgtype = item["payload"]["msgtype"]
    return gateway.wecom_webhook_send(item["webhook_key"], {"msgtype": msgtype, msgtype: item["payload"][msgtype]})


SENDERS = {messages.OA_TEMPLATE: _template, messages.MP_SUBSCRIBE: _subscribe, messages.OA_CUSTOM: _custom,
           messages.WECOM_GROUP: _group}


def _bucket(item: dict, config) -> tuple[str, float, int]:
    """(bucket name, tokens per second, burst) for the API this delivery uses."""
    if item["channel"] == messages.WECOM_GROUP:  # burst 1: never more than N in any minute
        return f"wecom:{item['webhook_key']}", config.WECOM_BOT_PER_MINUTE / 60, 1
    return f"wechat:{item['channel']}", config.WECHAT_SEND_RATE, config.WECHAT_SEND_RATE


def _dispatch(app, item: dict, config) -> tuple[dict | None, BaseException | None]:
    """One send on a pool thread, in its own app context; answers (answer, error) and never raises."""
    try:
        with app.app_context():
            if not ratelimit.acquire(*_bucket(item, config), timeout=RATE_WAIT):
                raise WeChatAPIError(None, "rate limit: no token within the wait", kind="transient")
            return SENDERS[item["channel"]](item), None
    except RedisError as exc:  # token cache or rate limiter unreachable: nothing was sent, so retry later
        return None, WeChatAPIError(None, f"Redis unavailable: {exc}"[:200], kind="transient")
    except Exception as exc:  # recorded on the row; nothing a send does may crash the worker
        return None, exc


@job
def send_deliveries(ids: list[int]) -> dict:
    """Send the due ``pending`` deliveries among ``ids`` that this worker manages to claim; counts by outcome."""
    config = app_config()
    app = current_app._get_current_object()
    width = max(1, config.DELIVERY_CONCURRENCY)
    todo, inflight, counts, fallbacks = list(dict.fromkeys(ids)), {}, Counter(), []
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="delivery") as pool:
        while todo or inflight:
            finished = set()
            if inflight and (not todo or len(inflight) >= width):
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
            now = utcnow()
            results = []
            for future in finished:
                item = inflight.pop(future)
                row = deliveries.outcome(item, *future.result(), now, config)
                results.append(row)
                counts[row["status"]] += 1
                fallbacks += deliveries.after_failure(item, row, now) if row["status"] != "sent" else []
            deliveries.record(results)
            batch, todo = todo[:width - len(inflight)], todo[width - len(inflight):]
            ready, more = deliveries.claim_for_sending(batch, now)
            fallbacks += more
            db.commit()  # results and the next claims are durable before any further HTTP call
            for item in ready:
                inflight[pool.submit(_dispatch, app, item, config)] = item
    messages.enqueue_send(fallbacks)
    return dict(counts)


@job
def sweep_deliveries(lease_seconds: int | None = None) -> dict:
    """Every 30 s: stale ``sending`` -> ``unknown`` (reported); due ``pending`` rows re-enqueued once per batch."""
    config = app_config()
    now = utcnow()
    lease = config.DELIVERY_LEASE_SECONDS if lease_seconds is None else lease_seconds
    unknown = deliveries.mark_unknown(now, lease)
    ids = deliveries.due_ids(now, SWEEP_BATCH * SWEEP_MAX_BATCHES)
    redis, enqueued = get_redis(), 0
    for start in range(0, len(ids), SWEEP_BATCH):
        chunk = ids[start:start + SWEEP_BATCH]
        # Two schedulers may sweep at once; only one enqueues a batch (and not again while it waits in the queue).
        if redis.set(SWEEP_GUARD.format(first=chunk[0], last=chunk[-1]), 1, nx=True, ex=60):
            enqueue_after_commit(send_deliveries, chunk, queue=DEFAULT)
            enqueued += len(chunk)
    return {"unknown": len(unknown), "enqueued": enqueued}
