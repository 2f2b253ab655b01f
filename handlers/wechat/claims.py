"""The callback's Redis work per push: the claim before the bot runs, the answer and the log after.

* **claim**: ``SET <claim> "" NX GET EX <ttl>``, atomic in Redis: nil means this
  call took the claim; anything else is what the claim holds (the answer's JSON, or
  "" while the first attempt still runs), so two deliveries of one push can never
  both take it.  A text push reads the sender's pending conversation (``GET``) in
  the same round trip.  (``NX`` with ``GET`` needs Redis 7.0 or Valkey.)
* **store**: ``SET <claim> <answer> EX <ttl>``, ``RPUSH`` of the push-log record
  and ``SET <drain flag> 1 NX EX <s>``: the push that sets the flag queues a drain
  job (at most one per ``DRAIN_FLAG_TTL``).  A process sends the flag's ``SET`` with
  one store per ``DRAIN_FLAG_TTL`` (the flag is then held by it or by another
  process for about that long, so the commands in between would change nothing);
  records logged meanwhile go with the next drain, or the cron sweep's.

One round trip per push under load.  With ``defer`` > 0 a store is not sent on
its own: it waits in this process's queue and goes in front of the next claim
any web thread of the process makes, in the same write, so the pair costs one
round trip instead of two (half the system calls, in this process and in Redis).
A store waits at most ``defer`` seconds: when no claim comes, a flusher thread
sends what is queued, and the queue is sent when the process exits normally
(gunicorn stopping or recycling a worker).  A retry of a push finds its answer
all the same: in this process its claim goes out behind the queued store, and in
another it finds "" and waits (``RETRY_WAIT``) until the store arrives, within
``defer``.  What a hard kill (SIGKILL, out of memory) of the process loses is the
stores of the pushes answered in the last ``defer`` seconds: their push-log
records, and the answer a retry would get (it gets ``success``).  ``defer`` = 0
sends each store at once, in its own round trip.

The calls go over a connection each thread keeps (web threads serve one request
at a time) and are packed here: going through redis-py's command layer (pool
checkout and return, argument encoding, retry wrapper, response callbacks) cost
the callback more CPU than everything else it does with Redis.  A dropped
connection is reconnected once and the whole write sent again (a store twice is
harmless: the drain skips a record it has stored); a timeout is not retried.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from typing import Callable

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from .pushlog import DRAIN_FLAG, DRAIN_FLAG_TTL, PUSHLOG_KEY

log = logging.getLogger("unionhub.wechat.claims")

DEDUP_TTL = 600  # WeChat retries within 15 s; keep answers long enough for any retry
_FLAG_REPLY = 3  # a store's replies: SET, RPUSH and, when it carries the drain flag, SET NX
_PLAIN_REPLIES = 2


def _command(*parts: str | bytes | int) -> bytes:
    """One command in Redis's wire format (RESP)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        if isinstance(part, str):
            part = part.encode("utf-8")
        elif isinstance(part, int):
            part = b"%d" % part
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


class PushClaims:
    """The claim and store calls of one app's Redis (see the module's docstring).

    ``on_drain_flag`` is called (on whichever thread reads the reply) when a store set the drain flag;
    ``defer``: seconds a store may wait to travel with a later claim (0: sent at once).
    """

    def __init__(self, redis: Redis, defer: float = 0.0, on_drain_flag: Callable[[], None] | None = None):
        self.redis = redis
        self.defer = max(0.0, defer)
        self.on_drain_flag = on_drain_flag
        self._local = threading.local()
        self._cond = threading.Condition(threading.Lock())
        self._queued: list[tuple[bytes, int]] = []  # packed stores and their reply counts, oldest first
        self._flag_due = 0.0  # when this process next sends the drain flag's SET NX (monotonic)
        self._since = 0.0  # when the oldest queued store was queued (monotonic)
        self._flusher: threading.Thread | None = None
        self._flusher_idle = False  # waiting for a first store, not on a deadline
        self._flusher_client: Redis | None = None
        self._flushing = threading.Lock()  # one flush at a time on the flusher's connection

    # -- the two calls ----------------------------------------------------------------------

    def claim(self, claim_key: str, conversation_key: str | None = None) -> tuple[bool, bytes | None]:
        """(True, the conversation's raw state or None) when this call took the claim;
        (False, what the claim holds) when it was already taken."""
        commands = [_command("SET", claim_key, "", "NX", "GET", "EX", DEDUP_TTL)]
        if conversation_key:
            commands.append(_command("GET", conversation_key))
        replies = self._send(self._take() if self._queued else [], commands, self._connection())
        held = replies[0]
        if held is None:
            return True, (replies[1] if conversation_key else None)
        return False, held

    def store(self, claim_key: str, answer_json: str, log_record: str) -> None:
        """Store the answer under the claim and log the push: now, or with a later claim (``defer``)."""
        packed = _command("SET", claim_key, answer_json, "EX", DEDUP_TTL) + _command("RPUSH", PUSHLOG_KEY, log_record)
        now = time.monotonic()
        if now >= self._flag_due:  # (two threads racing here both send it: harmless)
            self._flag_due = now + DRAIN_FLAG_TTL
            packed = (packed + _command("SET", DRAIN_FLAG, "1", "NX", "EX", DRAIN_FLAG_TTL), _FLAG_REPLY)
        else:
            packed = (packed, _PLAIN_REPLIES)
        if not self.defer:
            self._send([packed], [], self._connection())
            return
        with self._cond:
            if not self._queued:
                self._since = time.monotonic()
            self._queued.append(packed)
            if self._flusher is None:
                self._start_flusher()
            elif self._flusher_idle:
                self._cond.notify()

    def forget_drain_flag(self) -> None:
        """Send the drain flag with the next store (after Redis lost its data: a flush, a restart)."""
        self._flag_due = 0.0

    def flush(self) -> None:
        """Send every queued store now (the flusher's work; also at exit, and for tests)."""
        with self._flushing:
            conn = self._flusher_connection()
            stores = self._take()
            if stores:
                self._send(stores, [], conn)

    # -- queue and flusher ------------------------------------------------------------------

    def _take(self) -> list[tuple[bytes, int]]:
        with self._cond:
            stores, self._queued = self._queued, []
        return stores

    def _requeue(self, stores: list[tuple[bytes, int]]) -> None:
        with self._cond:
            if not self._queued:
                self._since = time.monotonic()
            self._queued[:0] = stores

    def _start_flusher(self) -> None:
        """(Called holding ``_cond``.)  The process's flusher thread, and the flush at exit."""
        self._flusher = threading.Thread(target=self._flush_loop, name="wx-store-flusher", daemon=True)
        self._flusher.start()
        atexit.register(self._flush_at_exit)

    def _flush_loop(self) -> None:
        """Send the queued stores once the oldest has waited ``defer`` seconds (claims usually take them first)."""
        while True:
            with self._cond:
                if not self._queued:
                    self._flusher_idle = True  # a store wakes us; under load claims keep taking them
                    self._cond.wait()
                    self._flusher_idle = False
                    continue
                wait = self._since + self.defer - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
            try:
                self.flush()
            except Exception:  # Redis unreachable (the stores went back to the queue), or anything else: never die
                log.warning("could not send the queued push stores; trying again", exc_info=True)
                time.sleep(max(self.defer, 0.1))

    def _flush_at_exit(self) -> None:
        if not self._queued:
            return
        try:
            self.flush()
        except Exception:
            log.error("%d push stores could not be sent at exit", len(self._queued), exc_info=True)

    def _flusher_connection(self):
        if self._flusher_client is None:
            self._flusher_client = Redis(connection_pool=self.redis.connection_pool, single_connection_client=True)
        return self._flusher_client.connection

    def _connection(self):
        client = getattr(self._local, "client", None)
        if client is None:
            # A single-connection client holds one connection of the app's pool and gives it
            # back when it is collected (when this thread ends).
            client = self._local.client = Redis(connection_pool=self.redis.connection_pool, single_connection_client=True)
        return client.connection

    # -- the wire ---------------------------------------------------------------------------

    def _send(self, stores: list[tuple[bytes, int]], commands: list[bytes], conn) -> list:
        """Send ``stores`` then ``commands`` in one write and read every reply; the commands' replies.

        A store that cannot be sent goes back to the queue (deferred mode) or raises (immediate mode)."""
        payload = b"".join([packed for packed, _ in stores] + commands)
        stored = sum(count for _, count in stores)
        for attempt in (1, 2):
            try:
                conn.send_packed_command([payload])
                replies = [self._read(conn) for _ in range(stored + len(commands))]
                break
            except RedisConnectionError:
                # Stale or dropped: the send reconnects.  A timeout is not retried (the claim may have been taken).
                conn.disconnect()
                if attempt == 2:
                    self._give_back(stores)
                    raise
            except Exception:  # a timeout, or anything unexpected: the stores go back to the queue
                conn.disconnect()  # replies may be left unread: never reuse the connection as it is
                self._give_back(stores)
                raise
        self._stored(stores, replies[:stored])
        own = replies[stored:]
        for reply in own:
            if isinstance(reply, ResponseError):
                raise reply
        return own

    def _give_back(self, stores: list[tuple[bytes, int]]) -> None:
        if stores and self.defer:
            self._requeue(stores)

    @staticmethod
    def _read(conn):
        """One reply; an error reply is returned, not raised, so the replies after it are still read."""
        try:
            return conn.read_response()
        except ResponseError as exc:
            return exc

    def _stored(self, stores: list[tuple[bytes, int]], replies: list) -> None:
        at = 0
        for _, count in stores:
            answer, logged = replies[at], replies[at + 1]
            flag = replies[at + 2] if count == _FLAG_REPLY else None
            at += count
            failed = [r for r in (answer, logged) if isinstance(r, ResponseError)]
            if failed:  # Redis refused the write (out of memory, a read-only replica): nothing to retry into
                log.error("a push's answer or push-log record was refused by Redis: %s", failed[0])
            if flag is not None and not isinstance(flag, ResponseError) and self.on_drain_flag:
                try:
                    self.on_drain_flag()
                except Exception:  # the cron sweep drains the log anyway
                    log.warning("could not queue the push-log drain", exc_info=True)
