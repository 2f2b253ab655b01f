"""The push log: every inbound push, recorded without slowing the callback.

The callback appends one JSON record to a Redis list with the commands that
store its answer (``claims.py``); :func:`jobs.wechat.store_pushes` moves the
records into the ``wechat_pushes`` table in batches (at most one drain is
queued at a time, and the cron sweep catches anything left).
"""

from __future__ import annotations

import json
import time

from . import replies

PUSHLOG_KEY = "unionhub:wx:pushlog"
DRAIN_FLAG = "unionhub:wx:pushlog:drain-queued"
DRAIN_FLAG_TTL = 5  # at most one drain job queued per this many seconds
CONTENT_LIMIT = 2000
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode  # json.dumps builds an encoder per call


def push_record(message: dict, key: str, encrypted: bool, bot: str | None, spec, duration_ms: float, error: str | None,
                received_at: float | None = None) -> str:
    """The push log's JSON record of one push (what :func:`jobs.wechat.store_pushes` reads)."""
    record = {
        "dedup_key": key[:160],
        "openid": (message.get("FromUserName") or "")[:64],
        "msg_type": (message.get("MsgType") or "")[:32],
        "event": (message.get("Event") or None) and message["Event"][:64],
        "event_key": (message.get("EventKey") or None) and str(message["EventKey"])[:255],
        "msg_id": (message.get("MsgId") or message.get("MsgID") or None),
        "content": (message.get("Content") or None) and message["Content"][:CONTENT_LIMIT],
        "payload": message,
        "encrypted": encrypted,
        "bot": bot,
        "reply_type": spec["type"] if spec else "success",
        "reply_preview": replies.preview(spec),
        "duration_ms": round(duration_ms, 3),
        "error": error,
        "create_time": message.get("CreateTime"),
        "received_at": received_at if received_at is not None else time.time(),
    }
    return _encode(record)


def queue_drain(redis) -> None:
    """Queue a drain job (a push set the drain flag: the first in a DRAIN_FLAG_TTL window).
    ``redis``: the app's client (this may run on the claims' flusher thread, outside any app context)."""
    from jobs import queues
    from jobs.wechat import store_pushes

    queues.get_queue(queues.DEFAULT, connection=redis).enqueue(store_pushes)
