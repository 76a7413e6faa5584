"""Admission control of new sagas: a checkout starts a saga only while the sagas in flight
(started and not final) stay under a limit; past it the mutation answers ThrottledError
(errorType ThrottlingException, errorInfo.retryable, errorInfo.retryAfterSeconds) and starts
nothing. Without it a burst of checkouts piles executions onto the workflow engine faster
than the workers finish them: every in-flight saga then waits behind the new ones, none
completes, and the backlog grows without bound (issue 9: 2 of ~210 orders confirmed).

What is in flight is measured, not counted by hand: `measure` (the task queue's messages,
waiting or being worked on: a running execution has one task outstanding at a time, so the
queue's depth is the number of sagas doing something) is sampled at most once per
`refresh_seconds`, one request whatever the load. Added to it: this instance's checkouts
admitted and not started yet (the mutation's reads and StartExecution come between; one
whose request failed validation never starts and is forgotten after `start_timeout_seconds`),
and those started less than `start_grace_seconds` before the sample was asked for (the
engine's first transition puts the first task in the queue). Counting from the admission
instead, with one grace for both, either double-counted quick sagas (one client was refused
at 3.6 checkouts/s) or, with a short grace, missed slow ones on a loaded host (the queue
reached 39 with a limit of 24). The check and the count happen without an await in between,
so concurrent mutations of one instance cannot all slip through the same gap. Several API
instances each add only their own admissions: between two samples they may overshoot by
what they admit in one period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from domain.commands import CancelOrder, Checkout
from domain.errors import ThrottledError
from resolvers.ports import OrderWorkflows

log = logging.getLogger(__name__)

# () -> sagas in flight now (workflows are measured by their task queue's depth).
InFlightMeasure = Callable[[], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """max_in_flight: sagas in flight past which new checkouts are refused (a worker's 8
    slots and its 8 read ahead: every slot busy, few enough that a step never waits long).
    refresh_seconds: how old a sample of the measure may be. retry_after_seconds: the hint
    given to a refused caller when the limit is just reached; it grows with the excess.
    start_grace_seconds: how long a started saga's first task may take to show in the
    measure. start_timeout_seconds: how long an admission not followed by a start counts."""

    max_in_flight: int = 16
    refresh_seconds: float = 0.5
    retry_after_seconds: float = 0.5
    start_grace_seconds: float = 0.5
    start_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if self.refresh_seconds <= 0 or self.retry_after_seconds <= 0:
            raise ValueError("refresh_seconds and retry_after_seconds must be positive")
        if self.start_grace_seconds < 0 or self.start_timeout_seconds <= 0:
            raise ValueError(
                "start_grace_seconds must not be negative, start_timeout_seconds positive"
            )


class SagaAdmission:
    """Decides whether one more saga may start; see the module docstring."""

    def __init__(
        self,
        measure: InFlightMeasure,
        limits: AdmissionLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._measure = measure
        self.limits = limits or AdmissionLimits()
        self._clock = clock
        self._sample = 0
        self._sampled_at: float | None = None  # when the last good sample was asked for
        self._tried_at: float | None = None  # when the last sample, good or not, ended
        self._starting: deque[float] = deque()  # admitted, not started: when admitted
        self._started: deque[float] = deque()  # when recent starts answered
        self._sampling: asyncio.Task[None] | None = None
        self.refused = 0  # refusals since start (telemetry, tests)

    async def in_flight(self) -> int:
        """The estimate the next decision uses: the last sample plus what was admitted since."""
        now = self._clock()
        if self._tried_at is None or now - self._tried_at >= self.limits.refresh_seconds:
            if self._sampling is None:
                self._sampling = asyncio.create_task(self._take_sample(), name="saga-admission")
            sampling = self._sampling
            # Shielded: a mutation cancelled while it waits must not cancel everyone's sample.
            await asyncio.shield(sampling)
        return self._sample + self._recent_admissions()

    def _recent_admissions(self) -> int:
        """Sagas of this instance the last sample may not show yet: admitted and not started,
        and started shortly before the sample was asked for or after it."""
        now = self._clock()
        while self._starting and self._starting[0] < now - self.limits.start_timeout_seconds:
            self._starting.popleft()  # its request never started a saga
        if self._sampled_at is not None:
            horizon = self._sampled_at - self.limits.start_grace_seconds
            while self._started and self._started[0] < horizon:
                self._started.popleft()
        return len(self._starting) + len(self._started)

    def started(self) -> None:
        """An admitted checkout's StartExecution answered (or failed): from now on its first
        task is on its way to the queue."""
        if self._starting:
            self._starting.popleft()
            self._started.append(self._clock())

    async def admit(self) -> None:
        """Count one more saga in flight, or raise ThrottledError (nothing counted)."""
        estimate = await self.in_flight()
        limit = self.limits.max_in_flight
        if estimate >= limit:
            self.refused += 1
            excess = (estimate - limit + 1) / limit
            retry_after = self.limits.retry_after_seconds * min(4.0, 1.0 + excess)
            raise ThrottledError(
                f"too many orders in progress ({estimate} sagas in flight, limit {limit}): "
                f"nothing was started; retry in {retry_after:.1f} s with the same idempotencyKey",
                retry_after,
            )
        self._starting.append(self._clock())

    async def _take_sample(self) -> None:
        # The figure describes the queue as it was when asked (a loaded endpoint may take
        # seconds to answer): admissions are weighed against that moment.
        asked = self._clock()
        try:
            value = await self._measure()
        except Exception as exc:
            # The gate protects the engine; it is not what makes a saga correct. Blind, it
            # keeps the last figure and every start since it (minus the grace), and
            # tries again after a period.
            log.warning("saga admission: could not measure the sagas in flight: %s", exc)
        else:
            self._sample = max(0, value)
            self._sampled_at = asked
        finally:
            self._tried_at = self._clock()
            self._sampling = None


class AdmittedOrderWorkflows:
    """resolvers.ports.OrderWorkflows and CheckoutAdmission: the checkout resolver calls
    `admit_checkout` before it reads anything (resolvers.writes.checkout), then
    `start_checkout`, which passes through.

    Cancellations are not gated: they are few, they end a customer's commitment rather than
    add one, and refusing them would keep a CONFIRMED order alive that its owner gave up."""

    def __init__(self, inner: OrderWorkflows, admission: SagaAdmission) -> None:
        self._inner = inner
        self._admission = admission

    async def admit_checkout(self) -> None:
        await self._admission.admit()

    async def start_checkout(self, command: Checkout, placed_in: str) -> bool:
        try:
            return await self._inner.start_checkout(command, placed_in)
        finally:
            self._admission.started()

    async def start_cancellation(self, command: CancelOrder) -> None:
        await self._inner.start_cancellation(command)
