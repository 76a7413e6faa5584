"""Which rate limiter the edge uses: Redis when the region has one (every instance shares one
allowance per caller), else in process; none when no limit is configured."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from adapters.redis_rate_limiter import RedisRateLimiter
from hemisphere.http.ports import Rate
from hemisphere.http.rate_limits import InProcessRateLimiter, RateLimits, Throttle
from hemisphere.settings import Settings


def rate_limits(settings: Settings) -> RateLimits:
    def rate(configured: tuple[float, int] | None) -> Rate | None:
        return None if configured is None else Rate(*configured)

    return RateLimits(
        per_address=rate(settings.rate_limit_per_address),
        per_api_key=rate(settings.rate_limit_per_api_key),
        per_identity=rate(settings.rate_limit_per_identity),
    )


@contextlib.asynccontextmanager
async def open_throttle(settings: Settings) -> AsyncIterator[Throttle | None]:
    limits = rate_limits(settings)
    if not limits.enabled:
        yield None
        return
    if settings.redis_url is None:
        yield Throttle(InProcessRateLimiter(), limits)
        return
    limiter = RedisRateLimiter(settings.redis_url, prefix=f"hemisphere:{settings.region}:rate:")
    try:
        yield Throttle(limiter, limits)
    finally:
        await limiter.aclose()
