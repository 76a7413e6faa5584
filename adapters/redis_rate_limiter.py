"""hemisphere.http.ports.RateLimiter on Redis: one allowance per caller for every instance of
the region. The GCRA step (hemisphere.http.rate_limits.gcra) runs as one script, so two
instances never both spend the last request, and on Redis's clock, so instances whose
clocks differ agree. A Redis that does not answer is a named error, not a hang; the edge
then lets the request through (a limiter outage must not take the API down with it)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain.errors import BackendUnavailableError
from hemisphere.http.ports import Decision, Rate

# KEYS[1]: the caller's key. ARGV: interval and tolerance in microseconds.
# Returns {allowed (1/0), microseconds to wait}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed_at = tat - tolerance
if allowed_at > now then
  return {0, allowed_at - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
"""


class RateLimiterUnavailableError(BackendUnavailableError):
    """Redis did not answer the rate limiter in time."""


class RedisRateLimiter:
    def __init__(self, url: str, *, prefix: str = "hemisphere:rate:", timeout: float = 0.5):
        self._redis: Redis = Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        self._prefix = prefix
        self._script: Any = self._redis.register_script(_GCRA)

    async def acquire(self, key: str, rate: Rate) -> Decision:
        interval = 1_000_000 / rate.per_second
        tolerance = interval * max(rate.burst - 1, 0)
        try:
            allowed, wait = await self._script(
                keys=[self._prefix + key], args=[int(interval), int(tolerance)]
            )
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise RateLimiterUnavailableError(
                f"the rate limiter's Redis is unavailable ({type(error).__name__})"
            ) from error
        return Decision(bool(allowed), int(wait) / 1_000_000)

    async def aclose(self) -> None:
        await self._redis.aclose()
