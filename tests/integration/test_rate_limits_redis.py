"""The Redis rate limiter: one allowance per caller shared by every instance of a region, on
Redis's clock; a Redis that does not answer is a named error within its timeout."""

from __future__ import annotations

import time
import uuid

import pytest

from adapters.redis_rate_limiter import RateLimiterUnavailableError, RedisRateLimiter
from hemisphere.http.ports import Rate


async def test_instances_share_one_allowance_per_caller(redis_url: str) -> None:
    prefix = f"hemisphere-test-{uuid.uuid4().hex[:8]}:rate:"
    a, b = RedisRateLimiter(redis_url, prefix=prefix), RedisRateLimiter(redis_url, prefix=prefix)
    rate = Rate(per_second=1, burst=3)
    try:
        taken = [(await limiter.acquire("key:k1", rate)).allowed for limiter in (a, b, a, b)]
        assert taken == [True, True, True, False]
        refused = await b.acquire("key:k1", rate)
        assert 0 < refused.retry_after_seconds <= 1.0
        assert (await a.acquire("key:other", rate)).allowed
    finally:
        await a.aclose()
        await b.aclose()


async def test_an_unreachable_redis_is_a_named_error_not_a_hang() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", timeout=0.2)
    started = time.monotonic()
    try:
        with pytest.raises(RateLimiterUnavailableError):
            await limiter.acquire("key:k1", Rate(1, 1))
    finally:
        await limiter.aclose()
    assert time.monotonic() - started < 5
