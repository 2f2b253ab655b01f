"""Sending deliveries: ``send_deliveries(ids)`` and the ``sweep_deliveries`` cron job.

``send_deliveries`` keeps at most DELIVERY_CONCURRENCY rows claimed: it
claims that many (one conditional UPDATE that also returns what the sends
need, committed before any HTTP call), takes their rate-limit tokens from
the shared Redis bucket (``_Tokens``: one call per 64 sends), and hands plain dicts
to a small thread pool (each thread in one app context for the job) that sends
them over the pooled HTTP connections.  As sends finish it records their results
(successes in one UPDATE) and claims as many rows again, in one transaction per
``GATHER``-th of the width, so the database sees a few statements per several
sends rather than per send; all of a job's transactions run on one connection
(``txn.one_connection``: no pool checkout, reset and ping per transaction).  The
access token is read from Redis once per job (``gateway.token_cache``) and still
refreshed once, through Redis, when WeChat refuses it.
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
from server.services.txn import one_connection
from server.wechat import gateway, ratelimit
from server.wechat.errors import WeChatAPIError

from .base import app_config, job
from .queues import DEFAULT, enqueue_after_commit

log = logging.getLogger("unionhub.jobs.delivery")
SWEEP_BATCH = 500
SWEEP_MAX_BATCHES = 20
SWEEP_GUARD = "unionhub:delivery-sweep:{first}:{last}"
RATE_WAIT = 10.0  # seconds a send may wait for a rate-limit token before it is retried later
BUDGET = 64  # rate-limit tokens taken from the shared bucket at a time (see _Tokens)
GATHER = 4  # results are recorded (and free slots claimed again) once a 1/GATHER of the width has finished
NO_TOKEN = "rate limit: no token within the wait"


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


def _redis_down(exc: RedisError) -> WeChatAPIError:
    # token cache or rate limiter unreachable: nothing was sent, so retry later
    return WeChatAPIError(None, f"Redis unavailable: {exc}"[:200], kind="transient")


class _Tokens:
    """Rate-limit tokens for the sends of one job, taken from the shared buckets a budget at a time.

    ``take(items, expected)`` answers which claimed items may go (their tokens in hand) and which got none
    within RATE_WAIT.  When it needs tokens it takes, in one Redis call per bucket, enough for up to
    ``BUDGET`` sends (no more than the bucket's burst, nor than ``expected``, the sends the job may still
    make), so the shared bucket is asked once per budget rather than per send or per claimed batch.
    Tokens left at the end of the job are dropped: the bucket bounds tokens taken, and every send spends
    one it took.  Buckets of burst 1 (a WeCom bot: N a minute) are left to each send, so one slow bot
    holds only its own slot.
    """

    def __init__(self, config):
        self.config = config
        self.held: Counter = Counter()  # bucket -> tokens in hand

    def take(self, items: list[dict], expected: int = 0) -> tuple[list[tuple[dict, bool]], list[tuple[dict, BaseException]]]:
        go, refused = [], []
        for bucket, group in self._groups(items).items():
            name, rate, burst = bucket
            if burst <= 1:
                go += [(item, False) for item in group]
                continue
            error = None
            try:
                while self.held[bucket] < len(group) and error is None:
                    want = len(group) - self.held[bucket]
                    count = min(max(want, min(BUDGET, expected) - self.held[bucket]), burst)
                    if ratelimit.acquire(name, rate, burst, timeout=RATE_WAIT, count=count):
                        self.held[bucket] += count
                    else:
                        error = WeChatAPIError(None, NO_TOKEN, kind="transient")
            except RedisError as exc:
                error = _redis_down(exc)
            ready = min(len(group), self.held[bucket])
            self.held[bucket] -= ready
            go += [(item, True) for item in group[:ready]]
            refused += [(item, error) for item in group[ready:]]
        return go, refused

    def _groups(self, items: list[dict]) -> dict[tuple, list[dict]]:
        groups: dict[tuple, list[dict]] = {}
        for item in items:
            groups.setdefault(_bucket(item, self.config), []).append(item)
        return groups


def _dispatch(item: dict, config, token_taken: bool) -> tuple[dict | None, BaseException | None]:
    """One send on a pool thread (in the app context the thread keeps); answers (answer, error), never raises."""
    try:
        if not token_taken and not ratelimit.acquire(*_bucket(item, config), timeout=RATE_WAIT):
            raise WeChatAPIError(None, NO_TOKEN, kind="transient")
        return SENDERS[item["channel"]](item), None
    except RedisError as exc:
        return None, _redis_down(exc)
    except Exception as exc:  # recorded on the row; nothing a send does may crash the worker
        return None, exc


def _finished(futures, need: int) -> list:
    """Wait until at least ``need`` of ``futures`` have finished; the finished ones."""
    done, waiting = [], set(futures)
    while len(done) < need:
        ready, waiting = wait(waiting, return_when=FIRST_COMPLETED)
        done += ready
    return done


@job
def send_deliveries(ids: list[int]) -> dict:
    """Send the due ``pending`` deliveries among ``ids`` that this worker manages to claim; counts by outcome."""
    config = app_config()
    app = current_app._get_current_object()
    width = max(1, config.DELIVERY_CONCURRENCY)
    gather = max(1, width // GATHER)
    todo, inflight, counts, fallbacks, tokens = list(dict.fromkeys(ids)), {}, Counter(), [], _Tokens(config)
    done: list[tuple[dict, dict | None, BaseException | None]] = []  # finished (or refused) sends to record
    # Each pool thread enters one app context for its life (the job's): sends use no database session,
    # so the context needs no teardown, and a context var cannot be reset from another thread anyway.
    pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix="delivery",
                              initializer=lambda: app.app_context().push())
    with gateway.token_cache(), one_connection(), pool:
        while todo or inflight or done:
            # Wait for enough sends to finish that a claim fills ``gather`` slots (draining: for any one).
            need = min(gather - (width - len(inflight)), len(inflight)) if todo else 1
            if inflight and not done and need > 0:
                for future in _finished(inflight, need):
                    done.append((inflight.pop(future), *future.result()))
            now = utcnow()
            results = []
            for item, answer, error in done:
                row = deliveries.outcome(item, answer, error, now, config)
                results.append(row)
                counts[row["status"]] += 1
                fallbacks += deliveries.after_failure(item, row, now) if row["status"] != "sent" else []
            free = width - len(inflight)
            ready, more = deliveries.claim_for_sending(todo[:free], now, results)
            todo, fallbacks = todo[free:], fallbacks + more
            db.commit()  # results and the next claims are durable before any further HTTP call
            go, refused = tokens.take(ready, len(ready) + len(todo))
            done = [(item, None, error) for item, error in refused]
            for item, taken in go:
                inflight[pool.submit(_dispatch, item, config, taken)] = item
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
