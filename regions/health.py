"""Route 53-style health checks of each region's readiness endpoint.

Every `interval` seconds each region's `GET {base}/readyz` is probed with a `timeout`; a 2xx or
3xx answer is a success, anything else (503 while draining or not caught up, a refused
connection, a timeout) a failure. As in Route 53, a healthy region turns unhealthy after
`failure_threshold` consecutive failures and back after as many consecutive successes, so one
lost probe does not move traffic and detection takes about interval * threshold.

A region's state is unknown until its first probe, which decides it at once (an edge started
next to regions that are already up routes from the first second). Every change of state is
recorded as a `Transition` with its wall-clock time (the drill prints them) and passed to the
listeners (the edge closes the WebSockets of a region that turned unhealthy).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

DEFAULT_INTERVAL_SECONDS = 1.0
DEFAULT_TIMEOUT_SECONDS = 1.0
DEFAULT_FAILURE_THRESHOLD = 3
READINESS_PATH = "/readyz"


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    ok: bool
    detail: str  # "HTTP 200", "HTTP 503", "timeout", "connection refused"…


class Probe(Protocol):
    async def __call__(self, base_url: str) -> ProbeOutcome: ...


class HttpReadinessProbe:
    """`GET {base_url}/readyz` on one keep-alive client (as cheap as the endpoint allows)."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT_SECONDS, path: str = READINESS_PATH):
        self._client = httpx.AsyncClient(timeout=timeout)
        self._path = path

    async def __call__(self, base_url: str) -> ProbeOutcome:
        try:
            response = await self._client.get(base_url.rstrip("/") + self._path)
        except httpx.TimeoutException:
            return ProbeOutcome(False, "timeout")
        except httpx.HTTPError as error:
            return ProbeOutcome(False, f"{type(error).__name__}: {error}".rstrip(": "))
        return ProbeOutcome(200 <= response.status_code < 400, f"HTTP {response.status_code}")

    async def aclose(self) -> None:
        await self._client.aclose()


@dataclass(frozen=True, slots=True)
class Transition:
    region: str
    healthy: bool
    at: float  # wall-clock seconds since the epoch
    detail: str  # the probe outcome that decided it

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "healthy": self.healthy,
            "at": self.at,
            "detail": self.detail,
        }


@dataclass(slots=True)
class RegionHealth:
    healthy: bool | None = None  # None until the first probe
    consecutive_successes: int = 0
    consecutive_failures: int = 0
    last_detail: str = "not probed yet"
    last_probe_at: float | None = None
    transitions: list[Transition] = field(default_factory=list)


class HealthChecker:
    """Health of every region, from probes every `interval` seconds (see the module docstring).

    `record` is the state machine (pure, driven by outcomes); `check_once` probes every region
    once, concurrently; `run` repeats it on a steady cadence until cancelled.
    """

    def __init__(
        self,
        targets: Mapping[str, str],
        probe: Probe,
        *,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if interval <= 0 or timeout <= 0:
            raise ValueError(f"interval and timeout must be > 0, got {interval} and {timeout}")
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be ≥ 1, got {failure_threshold}")
        self.targets = dict(targets)
        self.interval = interval
        self.timeout = timeout
        self.failure_threshold = failure_threshold
        self._probe = probe
        self._clock = clock
        self._sleep = sleep
        self._regions = {region: RegionHealth() for region in self.targets}
        self._listeners: list[Callable[[Transition], None]] = []

    def subscribe(self, listener: Callable[[Transition], None]) -> None:
        """`listener` is called with every transition, as it is recorded."""
        self._listeners.append(listener)

    def is_healthy(self, region: str) -> bool:
        return self._regions[region].healthy is True

    def healthy_regions(self) -> set[str]:
        return {region for region, health in self._regions.items() if health.healthy}

    @property
    def transitions(self) -> list[Transition]:
        """Every region's transitions, oldest first."""
        every = [t for health in self._regions.values() for t in health.transitions]
        return sorted(every, key=lambda transition: transition.at)

    def record(self, region: str, outcome: ProbeOutcome) -> Transition | None:
        """Count one probe outcome; the transition it causes, if any."""
        health = self._regions[region]
        health.last_detail = outcome.detail
        health.last_probe_at = self._clock()
        if outcome.ok:
            health.consecutive_successes += 1
            health.consecutive_failures = 0
        else:
            health.consecutive_failures += 1
            health.consecutive_successes = 0
        streak = health.consecutive_successes if outcome.ok else health.consecutive_failures
        if health.healthy is outcome.ok:
            return None
        if health.healthy is not None and streak < self.failure_threshold:
            return None
        health.healthy = outcome.ok
        transition = Transition(region, outcome.ok, health.last_probe_at, outcome.detail)
        health.transitions.append(transition)
        for listener in self._listeners:
            listener(transition)
        return transition

    async def check_once(self) -> list[Transition]:
        regions = list(self.targets)
        outcomes = await asyncio.gather(*(self._probe_within_timeout(r) for r in regions))
        recorded = (
            self.record(region, outcome) for region, outcome in zip(regions, outcomes, strict=True)
        )
        return [transition for transition in recorded if transition is not None]

    async def run(self) -> None:
        """Probe every `interval` seconds (a slow probe does not shift the cadence)."""
        loop = asyncio.get_running_loop()
        next_round = loop.time()
        while True:
            await self.check_once()
            next_round += self.interval
            await self._sleep(max(0.0, next_round - loop.time()))

    def status(self) -> dict[str, dict[str, Any]]:
        return {
            region: {
                "healthy": health.healthy,
                "detail": health.last_detail,
                "last_probe_at": health.last_probe_at,
                "consecutive_failures": health.consecutive_failures,
                "consecutive_successes": health.consecutive_successes,
                "transitions": [t.to_json() for t in health.transitions],
            }
            for region, health in self._regions.items()
        }

    async def _probe_within_timeout(self, region: str) -> ProbeOutcome:
        try:
            return await asyncio.wait_for(self._probe(self.targets[region]), self.timeout)
        except TimeoutError:
            return ProbeOutcome(False, "timeout")
