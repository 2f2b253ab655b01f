"""handlers/wechat/claims.py: the claim and store scripts, over a connection the thread keeps."""

import json
import threading

from handlers.wechat.claims import DEDUP_TTL, PushClaims
from handlers.wechat.pushlog import DRAIN_FLAG, PUSHLOG_KEY


def test_a_claim_is_taken_once_and_then_holds_the_answer(redis):
    claims = PushClaims(redis)
    redis.set("conv:o1", b'{"step": "x"}')
    assert claims.claim("claim:1", "conv:o1") == (True, b'{"step": "x"}')
    assert claims.claim("claim:1", "conv:o1") == (False, b"")  # the first attempt still runs
    assert 0 < redis.ttl("claim:1") <= DEDUP_TTL
    assert claims.store("claim:1", '{"type": "text", "content": "好"}', '{"n": 1}') is True
    assert claims.claim("claim:1") == (False, '{"type": "text", "content": "好"}'.encode())
    assert claims.claim("claim:2") == (True, None)
    assert claims.claim("claim:3", "conv:nobody") == (True, None)
    assert claims.store("claim:2", "null", '{"n": 2}') is False  # the drain flag was already set
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


def test_flushed_scripts_are_loaded_again(redis):
    claims = PushClaims(redis)
    assert claims.claim("claim:a")[0]
    redis.script_flush()
    assert claims.claim("claim:b")[0]
    assert claims.store("claim:b", "null", "{}") in (True, False)


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
