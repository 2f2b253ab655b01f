"""One token bucket per name in Redis, shared by every process: ``acquire(name, rate, burst, timeout, count)``.

The bucket (tokens, last refill time) is a Redis hash updated by one Lua
script, so concurrent workers on any host take tokens atomically.  Time is
Redis's own clock (``TIME``), so hosts with skewed clocks agree.  The script
answers 0 when ``count`` tokens were taken (all or none), else the
milliseconds until that many will be there.  A sender takes the tokens for
up to ``jobs.delivery.BUDGET`` sends in one call (``count`` at most ``burst``),
so the shared bound costs one Redis round trip per budget rather than per send.
"""

from __future__ import annotations

import time

from flask import current_app

KEY = "unionhub:ratelimit:{name}"

_TAKE = """
local rate, burst, count = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3] or '1')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= count then tokens = tokens - count else wait = math.ceil((count - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""


def _redis():
    return current_app.extensions["unionhub"]["redis"]


def try_acquire(name: str, rate: float, burst: int = 1, redis=None, count: int = 1) -> int:
    """Take ``count`` tokens now: 0 on success, else the milliseconds to wait before trying again."""
    if not 1 <= count <= max(int(burst), 1):
        raise ValueError(f"cannot take {count} tokens from a bucket of {burst}")
    return int((redis or _redis()).eval(_TAKE, 1, KEY.format(name=name), repr(float(rate)), int(burst), int(count)))


def acquire(name: str, rate: float, burst: int = 1, timeout: float = 5.0, redis=None, count: int = 1) -> bool:
    """Wait (up to ``timeout`` seconds) for ``count`` tokens of bucket ``name`` (``rate`` per second, ``burst`` at most)."""
    redis = redis or _redis()
    deadline = time.monotonic() + timeout
    while True:
        wait_ms = try_acquire(name, rate, burst, redis, count)
        if wait_ms == 0:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(wait_ms / 1000, left))
