"""The callback's two Redis calls per push: the claim before the bot runs, the answer and the log after.

Each is one Lua script (EVALSHA), so each is one command and one round trip:

* **claim**: if the push's key is free, take it (an empty value until the answer
  is stored) and return the sender's pending conversation with it; if it is
  taken, return what it holds (the answer's JSON, or "" while the first attempt
  still runs).  A script is atomic: two deliveries of one push can never both
  take the claim.
* **store**: the answer under the claim, the push-log record on the log list,
  and the drain flag (set at most once per ``DRAIN_FLAG_TTL``: the push that sets
  it queues a drain job).

The calls go over a connection the web thread keeps (web threads serve one
request at a time) and are packed here: going through redis-py's command layer
(pool checkout and return, argument encoding, retry wrapper, response callbacks)
cost the callback more CPU than everything else it does with Redis.  A dropped
connection is reconnected once; a script Redis no longer knows (after a
``SCRIPT FLUSH`` or a failover) is loaded again.
"""

from __future__ import annotations

import hashlib
import threading

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from .pushlog import DRAIN_FLAG, DRAIN_FLAG_TTL, PUSHLOG_KEY

DEDUP_TTL = 600  # WeChat retries within 15 s; keep answers long enough for any retry

CLAIM_SCRIPT = """
local previous = redis.call('GET', KEYS[1])
if previous then return {0, previous} end
redis.call('SET', KEYS[1], '', 'EX', ARGV[1])
if KEYS[2] then return {1, redis.call('GET', KEYS[2])} end
return {1}
"""

STORE_SCRIPT = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[4]) then return 1 end
return 0
"""


def _evalsha(sha: bytes, keys: list[str], args: list[str | int]) -> bytes:
    """An EVALSHA command in Redis's wire format (keys and arguments are str or int)."""
    parts = [sha, b"%d" % len(keys)]
    parts += [v.encode("utf-8") if isinstance(v, str) else b"%d" % v for v in (*keys, *args)]
    return b"*%d\r\n$7\r\nEVALSHA\r\n" % (len(parts) + 1) + b"".join([b"$%d\r\n%s\r\n" % (len(p), p) for p in parts])


class _Script:
    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest().encode("ascii")


CLAIM = _Script(CLAIM_SCRIPT)
STORE = _Script(STORE_SCRIPT)


class PushClaims:
    """The claim and store calls of one app's Redis (see the module's docstring)."""

    def __init__(self, redis: Redis):
        self.redis = redis
        self._local = threading.local()

    def claim(self, claim_key: str, conversation_key: str | None = None) -> tuple[bool, bytes | None]:
        """(True, the conversation's raw state or None) when this call took the claim;
        (False, what the claim holds) when it was already taken."""
        keys = [claim_key, conversation_key] if conversation_key else [claim_key]
        result = self._call(CLAIM, keys, [DEDUP_TTL])
        return bool(result[0]), (result[1] if len(result) > 1 else None)

    def store(self, claim_key: str, answer_json: str, log_record: str) -> bool:
        """Store the answer and log the push; True when this push set the drain flag."""
        return bool(self._call(STORE, [claim_key, PUSHLOG_KEY, DRAIN_FLAG], [answer_json, DEDUP_TTL, log_record, DRAIN_FLAG_TTL]))

    def _connection(self):
        client = getattr(self._local, "client", None)
        if client is None:
            # A single-connection client holds one connection of the app's pool and gives it
            # back when it is collected (when this thread ends).
            client = self._local.client = Redis(connection_pool=self.redis.connection_pool, single_connection_client=True)
        return client.connection

    def _call(self, script: _Script, keys: list, args: list):
        command = _evalsha(script.sha, keys, args)
        conn = self._connection()
        for attempt in (1, 2):
            try:
                conn.send_packed_command([command])
                return conn.read_response()
            except NoScriptError:
                if attempt == 2:
                    raise
                self.redis.script_load(script.source)
            except RedisConnectionError:
                # Stale or dropped: the send reconnects.  A timeout is not retried (the script may have run).
                conn.disconnect()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")
