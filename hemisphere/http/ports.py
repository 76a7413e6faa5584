"""What the HTTP edge needs from backends it does not own: a rate limiter shared by every
instance of a region (adapters.redis_rate_limiter) or, alone, kept in process
(hemisphere.http.rate_limits.InProcessRateLimiter)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_second` requests on average, up to `burst` at once."""

    per_second: float
    burst: int


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_seconds: float = 0.0


class RateLimiter(Protocol):
    async def acquire(self, key: str, rate: Rate) -> Decision:
        """Take one request from `key`'s allowance (GCRA: a leaky bucket without a timer)."""
        ...
