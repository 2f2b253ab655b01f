"""The Redis token bucket shared by every worker."""

from __future__ import annotations

import threading
import time

from server.wechat import ratelimit


def test_a_burst_is_capped_and_refills_at_the_rate(redis):
    taken = [ratelimit.try_acquire("t-burst", rate=10, burst=5, redis=redis) == 0 for _ in range(8)]
    assert taken == [True] * 5 + [False] * 3
    wait_ms = ratelimit.try_acquire("t-burst", rate=10, burst=5, redis=redis)
    assert 0 < wait_ms <= 100
    start = time.monotonic()
    time.sleep(0.25)
    got = 0
    while got < 6 and ratelimit.try_acquire("t-burst", rate=10, burst=5, redis=redis) == 0:
        got += 1
    elapsed = time.monotonic() - start
    # 10 tokens a second: at least 2 after 0.25 s, and no more than the time since the refusal allows (a loaded
    # machine may take longer than 0.25 s; +1 for the part of a token left at the refusal), never above the burst
    assert 2 <= got <= min(5, int(elapsed * 10) + 1)


def test_acquire_waits_up_to_its_timeout(redis):
    assert ratelimit.acquire("t-wait", rate=5, burst=1, redis=redis, timeout=0)
    start = time.monotonic()
    assert ratelimit.acquire("t-wait", rate=5, burst=1, redis=redis, timeout=1)
    assert 0.1 < time.monotonic() - start < 1.0  # waited for the next token (one per 0.2 s), not the timeout
    assert not ratelimit.acquire("t-wait", rate=0.1, burst=1, redis=redis, timeout=0.2)


def test_two_threads_share_one_bucket(app, redis):
    times: list[float] = []
    lock = threading.Lock()

    def worker():
        with app.app_context():
            for _ in range(10):
                assert ratelimit.acquire("t-shared", rate=40, burst=4, timeout=5)
                with lock:
                    times.append(time.monotonic())

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    elapsed = time.monotonic() - start
    # 20 tokens from one bucket: 4 at once, then 16 at 40/s = 0.4 s, whichever thread takes them
    assert len(times) == 20 and 0.35 < elapsed < 1.5
    assert sum(1 for t in times if t - start < 0.2) <= 4 + 8 + 1
