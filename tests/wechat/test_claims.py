"""handlers/wechat/claims.py: the claim and the store, over a connection the thread keeps; deferred stores."""

import json
import logging
import threading
import time

import pytest

from handlers.wechat.claims import DEDUP_TTL, PushClaims
from handlers.wechat.pushlog import DRAIN_FLAG, PUSHLOG_KEY

ANSWER = '{"type": "text", "content": "好"}'


class Drains:
    def __init__(self):
        self.count = 0

    def __call__(self):
        self.count += 1


def _wait_for(predicate, seconds: float = 2.0) -> float:
    """Seconds until ``predicate()`` held (fails after ``seconds``)."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < seconds, "timed out"
        time.sleep(0.005)
    return time.monotonic() - started


def _count_writes(claims: PushClaims, monkeypatch) -> list:
    """Record every write the calling thread's connection makes."""
    conn = claims._connection()
    writes = []
    original = conn.send_packed_command

    def counting(command, check_health=True):
        writes.append(b"".join(command))
        return original(command, check_health)

    monkeypatch.setattr(conn, "send_packed_command", counting)
    return writes


def test_a_claim_is_taken_once_and_then_holds_the_answer(redis):
    drains = Drains()
    claims = PushClaims(redis, on_drain_flag=drains)
    redis.set("conv:o1", b'{"step": "x"}')
    assert claims.claim("claim:1", "conv:o1") == (True, b'{"step": "x"}')
    assert claims.claim("claim:1", "conv:o1") == (False, b"")  # the first attempt still runs
    assert 0 < redis.ttl("claim:1") <= DEDUP_TTL
    claims.store("claim:1", ANSWER, '{"n": 1}')
    assert drains.count == 1  # the first push sets the drain flag: one drain job
    assert claims.claim("claim:1") == (False, ANSWER.encode())
    assert 0 < redis.ttl("claim:1") <= DEDUP_TTL
    assert claims.claim("claim:2") == (True, None)
    assert claims.claim("claim:3", "conv:nobody") == (True, None)
    claims.store("claim:2", "null", '{"n": 2}')
    assert drains.count == 1  # the drain flag was already set
    assert [json.loads(r) for r in redis.lrange(PUSHLOG_KEY, 0, -1)] == [{"n": 1}, {"n": 2}]
    assert redis.ttl(DRAIN_FLAG) > 0


def test_only_one_of_many_concurrent_deliveries_takes_the_claim(redis):
    claims = PushClaims(redis)
    results, barrier = [], threading.Barrier(8)

    def deliver():
        barrier.wait()
        results.append(claims.claim("claim:race")[0])

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_a_dropped_connection_is_reconnected(redis):
    claims = PushClaims(redis)
    assert claims.claim("claim:x")[0]
    conn = claims._connection()
    conn.disconnect()  # as if Redis or the network had dropped it
    assert claims.claim("claim:y")[0]
    conn = claims._connection()
    conn.send_command("CLIENT", "ID")
    redis.execute_command("CLIENT", "KILL", "ID", conn.read_response())  # Redis closes it: only this one
    assert claims.claim("claim:z")[0]


def test_a_deferred_store_travels_with_the_next_claim_in_one_write(redis, monkeypatch):
    drains = Drains()
    claims = PushClaims(redis, defer=5.0, on_drain_flag=drains)  # the flusher would wait 5 s
    writes = _count_writes(claims, monkeypatch)
    assert claims.claim("claim:a")[0]
    claims.store("claim:a", ANSWER, '{"n": "a"}')
    assert redis.get("claim:a") == b"" and redis.llen(PUSHLOG_KEY) == 0  # queued, not sent
    assert claims.claim("claim:b", "conv:ob") == (True, None)
    assert len(writes) == 2  # one write per claim: the store went with the second
    assert b"RPUSH" in writes[1] and writes[1].index(b"claim:a") < writes[1].index(b"claim:b")
    assert redis.get("claim:a") == ANSWER.encode()
    assert [json.loads(r) for r in redis.lrange(PUSHLOG_KEY, 0, -1)] == [{"n": "a"}]
    assert drains.count == 1


def test_a_retry_in_the_same_process_gets_the_deferred_answer(redis):
    claims = PushClaims(redis, defer=5.0)
    assert claims.claim("claim:r")[0]
    claims.store("claim:r", ANSWER, "{}")
    assert claims.claim("claim:r") == (False, ANSWER.encode())  # the queued store went first


def test_a_store_queued_on_one_thread_goes_with_a_claim_on_another(redis):
    claims = PushClaims(redis, defer=5.0)
    assert claims.claim("claim:t1")[0]
    claims.store("claim:t1", ANSWER, "{}")
    seen = []
    worker = threading.Thread(target=lambda: seen.append(claims.claim("claim:t2")))
    worker.start()
    worker.join()
    assert seen == [(True, None)]
    assert redis.get("claim:t1") == ANSWER.encode()


def test_with_no_claim_coming_the_flusher_sends_a_store_within_the_deferral(redis):
    claims = PushClaims(redis, defer=0.05)
    assert claims.claim("claim:f")[0]
    claims.store("claim:f", ANSWER, '{"n": "f"}')
    waited = _wait_for(lambda: redis.get("claim:f") == ANSWER.encode())
    assert waited < 1.0
    assert redis.llen(PUSHLOG_KEY) == 1
    # The flusher goes back to sleep and wakes for the next store.
    assert claims.claim("claim:g")[0]
    claims.store("claim:g", ANSWER, '{"n": "g"}')
    _wait_for(lambda: redis.llen(PUSHLOG_KEY) == 2)


def test_queued_stores_are_sent_at_exit(redis):
    claims = PushClaims(redis, defer=5.0)
    for key in ("claim:e1", "claim:e2"):
        assert claims.claim(key)[0]
        claims.store(key, ANSWER, "{}")
    claims._flush_at_exit()  # what atexit runs when the worker process ends
    assert redis.mget("claim:e1", "claim:e2") == [ANSWER.encode()] * 2
    assert redis.llen(PUSHLOG_KEY) == 2


def test_a_store_queued_when_the_connection_drops_is_not_lost(redis):
    claims = PushClaims(redis, defer=5.0)
    assert claims.claim("claim:d1")[0]
    claims.store("claim:d1", ANSWER, "{}")
    conn = claims._connection()
    conn.send_command("CLIENT", "ID")
    redis.execute_command("CLIENT", "KILL", "ID", conn.read_response())
    assert claims.claim("claim:d2")[0]  # reconnected, and the store sent again with it
    assert redis.get("claim:d1") == ANSWER.encode()


def test_stores_that_cannot_be_sent_wait_for_the_next_claim(redis, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    claims = PushClaims(redis, defer=5.0)
    assert claims.claim("claim:w1")[0]
    claims.store("claim:w1", ANSWER, "{}")
    conn = claims._connection()
    original = conn.send_packed_command

    def down(command, check_health=True):
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(conn, "send_packed_command", down)
    with pytest.raises(RedisConnectionError):
        claims.claim("claim:w2")
    assert redis.get("claim:w1") == b""  # not sent, and still queued
    monkeypatch.setattr(conn, "send_packed_command", original)
    assert claims.claim("claim:w3")[0]
    assert redis.get("claim:w1") == ANSWER.encode()


def test_a_store_redis_refuses_is_logged_and_the_claim_still_answers(redis, caplog):
    claims = PushClaims(redis, defer=5.0)
    redis.set(PUSHLOG_KEY, "not a list")  # RPUSH gets WRONGTYPE
    assert claims.claim("claim:x1")[0]
    claims.store("claim:x1", ANSWER, "{}")
    with caplog.at_level(logging.ERROR, logger="unionhub.wechat.claims"):
        assert claims.claim("claim:x2") == (True, None)
    assert "refused by Redis" in caplog.text
    assert redis.get("claim:x1") == ANSWER.encode()  # the answer itself was stored
    assert claims.claim("claim:x3") == (True, None)  # the connection is still in step


def test_the_flusher_keeps_going_after_a_failed_flush(redis, monkeypatch):
    claims = PushClaims(redis, defer=0.02)
    assert claims.claim("claim:k1")[0]
    failures = []
    original = claims._flusher_connection

    def flaky():
        if not failures:
            failures.append(1)
            raise RuntimeError("a one-off failure")
        return original()

    monkeypatch.setattr(claims, "_flusher_connection", flaky)
    claims.store("claim:k1", ANSWER, "{}")
    _wait_for(lambda: failures)
    _wait_for(lambda: redis.get("claim:k1") == ANSWER.encode(), seconds=3)  # kept, and sent at the next try
    assert claims.claim("claim:k2")[0]
    claims.store("claim:k2", ANSWER, "{}")
    _wait_for(lambda: redis.get("claim:k2") == ANSWER.encode(), seconds=3)


def test_a_process_sends_the_drain_flag_once_per_the_flags_lifetime(redis, monkeypatch):
    """Within DRAIN_FLAG_TTL of sending the flag's SET NX a process leaves it out of its stores (it could set nothing)."""
    from handlers.wechat import claims as claims_module

    clock = [1000.0]
    monkeypatch.setattr(claims_module.time, "monotonic", lambda: clock[0])
    drains = Drains()
    claims = PushClaims(redis, on_drain_flag=drains)
    sent = []
    real_send = claims._send
    monkeypatch.setattr(claims, "_send", lambda stores, commands, conn: sent.append(stores) or real_send(stores, commands, conn))
    for n in range(3):
        assert claims.claim(f"unionhub:wx:push:flag{n}")[0]
        claims.store(f"unionhub:wx:push:flag{n}", '{"n": %d}' % n, '{"log": %d}' % n)
    assert drains.count == 1 and [stores[0][1] for stores in sent if stores] == [3, 2, 2]
    assert redis.llen(PUSHLOG_KEY) == 3
    redis.delete(DRAIN_FLAG)  # it expired
    clock[0] += 5.0  # DRAIN_FLAG_TTL later the next store carries it again
    claims.store("unionhub:wx:push:flag3", "{}", "{}")
    assert drains.count == 2 and redis.ttl(DRAIN_FLAG) > 0
    redis.delete(DRAIN_FLAG)
    claims.forget_drain_flag()  # Redis lost its data: the next store sets it at once
    claims.store("unionhub:wx:push:flag4", "{}", "{}")
    assert drains.count == 3
