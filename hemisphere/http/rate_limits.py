"""Per-caller rate limits: AppSync has none, its users ask for them. Three dimensions, each
with its own rate (HEMISPHERE_RATE_LIMIT_*; 0 turns one off): the client's address (checked
before authentication, so a flood of bad credentials is cheap), the API key, and the
identity (an IAM access key id). A refusal is HTTP 429 with `errorType` TooManyRequests,
`errorInfo.retryAfterSeconds` and a `Retry-After` header; nothing of the request ran.

The arithmetic is GCRA (the generic cell rate algorithm): each key keeps one number, the
time at which its allowance is whole again, so a limiter needs no timer and no sweep. The
in-process limiter serves one instance; with Redis every instance of the region shares one
allowance per caller (adapters.redis_rate_limiter runs the same arithmetic in a script).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from domain.auth import AuthMode, Caller
from domain.errors import BackendUnavailableError
from hemisphere.http.ports import Decision, Rate, RateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The rate of each dimension; None turns it off."""

    per_address: Rate | None = None
    per_api_key: Rate | None = None
    per_identity: Rate | None = None

    @property
    def enabled(self) -> bool:
        return any((self.per_address, self.per_api_key, self.per_identity))


def gcra(tat: float | None, now: float, rate: Rate) -> tuple[Decision, float | None]:
    """One request at `now` against a key whose theoretical arrival time is `tat`: the
    decision, and the key's new TAT (None when refused: unchanged)."""
    interval = 1.0 / rate.per_second
    tolerance = interval * max(rate.burst - 1, 0)
    current = max(tat if tat is not None else now, now)
    allowed_at = current - tolerance
    if allowed_at - now > 1e-6:  # a microsecond of float rounding is no reason to refuse
        return Decision(False, allowed_at - now), None
    return Decision(True), current + interval


class InProcessRateLimiter:
    """hemisphere.http.ports.RateLimiter for one instance; at most `max_keys` keys are
    remembered (the least recently seen are forgotten: an idle key's allowance is whole)."""

    def __init__(
        self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._tats: OrderedDict[str, float] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock

    async def acquire(self, key: str, rate: Rate) -> Decision:
        decision, tat = gcra(self._tats.get(key), self._clock(), rate)
        if tat is not None:
            self._tats[key] = tat
            self._tats.move_to_end(key)
            if len(self._tats) > self._max_keys:
                self._tats.popitem(last=False)
        return decision


class Throttle:
    """The edge's use of a limiter: which keys a request counts against. A limiter that does
    not answer lets requests through (logged once a minute): its outage must not take the
    API down with it."""

    def __init__(self, limiter: RateLimiter, limits: RateLimits) -> None:
        self._limiter = limiter
        self._limits = limits
        self._warned_at = -math.inf

    async def address(self, address: str | None) -> Decision:
        if self._limits.per_address is None or not address:
            return Decision(True)
        return await self._acquire(f"ip:{address}", self._limits.per_address)

    async def caller(self, caller: Caller) -> Decision:
        if caller.stream_publisher:
            return Decision(True)  # the region's own publisher is not a client
        if caller.mode is AuthMode.API_KEY:
            rate = self._limits.per_api_key
            key = f"key:{caller.principal}"
        else:
            rate = self._limits.per_identity
            key = f"id:{caller.mode.value}:{caller.principal}"
        if rate is None:
            return Decision(True)
        return await self._acquire(key, rate)

    async def _acquire(self, key: str, rate: Rate) -> Decision:
        try:
            return await self._limiter.acquire(key, rate)
        except BackendUnavailableError as error:
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("rate limits not enforced: %s", error.message)
            return Decision(True)


def retry_after_header(decision: Decision) -> str:
    """Whole seconds, at least 1 (what Retry-After can say)."""
    return str(max(1, math.ceil(decision.retry_after_seconds)))
