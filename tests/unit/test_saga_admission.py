"""workflows.admission: sagas in flight measured at most once per refresh, the admissions since
added, refusals named and retryable with a hint that grows with the excess."""

from __future__ import annotations

import asyncio

import pytest

from domain.commands import CancelOrder, Checkout, CheckoutLine
from domain.errors import ThrottledError
from resolvers.ports import CheckoutAdmission
from workflows.admission import AdmissionLimits, AdmittedOrderWorkflows, SagaAdmission


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Measure:
    """The queue's depth as a test sets it; counts how often it is asked."""

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth
        self.calls = 0
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.asked = asyncio.Event()

    async def __call__(self) -> int:
        self.calls += 1
        self.asked.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return self.depth


def admission(measure: Measure, clock: Clock, limit: int = 3) -> SagaAdmission:
    limits = AdmissionLimits(
        max_in_flight=limit,
        refresh_seconds=1.0,
        retry_after_seconds=0.5,
        start_grace_seconds=1.0,
        start_timeout_seconds=10.0,
    )
    return SagaAdmission(measure, limits, clock=clock)


async def test_admits_up_to_the_limit_counting_its_own_admissions_between_samples() -> None:
    measure, clock = Measure(depth=1), Clock()
    gate = admission(measure, clock, limit=3)
    await gate.admit()
    await gate.admit()  # 1 measured + 1 admitted = 2 < 3
    with pytest.raises(ThrottledError) as refused:
        await gate.admit()  # 1 + 2 = 3: full
    assert refused.value.error_type == "ThrottlingException"
    assert refused.value.retry_after_seconds == pytest.approx(0.5 * (1 + 1 / 3))
    assert "retry" in refused.value.message and "idempotencyKey" in refused.value.message
    assert measure.calls == 1 and gate.refused == 1


async def test_a_saga_counts_while_starting_then_until_a_sample_after_its_start() -> None:
    measure, clock = Measure(depth=2), Clock()
    gate = admission(measure, clock, limit=3)
    await gate.admit()  # t=100: 2 measured + 1 starting
    with pytest.raises(ThrottledError):
        await gate.admit()
    measure.depth = 0  # the workers finished the two; ours has not started yet
    clock.now += 5.0
    assert await gate.in_flight() == 1  # still starting (its mutation is slow)
    gate.started()  # t=105: StartExecution answered
    clock.now += 1.0
    assert await gate.in_flight() == 1  # a sample at t=106 may not show it yet (grace 1 s)
    clock.now += 1.5
    assert await gate.in_flight() == 0  # one at t=107.5 would: it is in the figure now
    assert measure.calls == 4


async def test_an_admission_that_never_starts_is_forgotten() -> None:
    measure, clock = Measure(depth=0), Clock()
    gate = admission(measure, clock, limit=1)
    await gate.admit()  # its request then fails validation: no start
    with pytest.raises(ThrottledError):
        await gate.admit()
    clock.now += 10.5
    await gate.admit()


async def test_the_hint_grows_with_the_excess_and_is_capped() -> None:
    measure, clock = Measure(depth=100), Clock()
    gate = admission(measure, clock, limit=3)
    with pytest.raises(ThrottledError) as refused:
        await gate.admit()
    assert refused.value.retry_after_seconds == pytest.approx(0.5 * 4.0)


async def test_concurrent_mutations_share_one_sample_and_cannot_overshoot() -> None:
    measure, clock = Measure(depth=0), Clock()
    measure.gate = asyncio.Event()
    gate = admission(measure, clock, limit=5)
    attempts = [asyncio.create_task(gate.admit()) for _ in range(8)]
    await asyncio.sleep(0)
    measure.gate.set()
    results = await asyncio.gather(*attempts, return_exceptions=True)
    assert measure.calls == 1
    assert sum(1 for r in results if r is None) == 5
    assert sum(1 for r in results if isinstance(r, ThrottledError)) == 3


async def test_a_failed_measure_keeps_the_last_figure_and_every_start_since() -> None:
    measure, clock = Measure(depth=0), Clock()
    gate = admission(measure, clock, limit=3)
    await gate.admit()  # t=100: sample 0
    gate.started()
    measure.fail = RuntimeError("SQS is down")
    for _ in range(2):
        clock.now += 4.0  # long past the grace, but no sample shows the starts
        await gate.admit()
        gate.started()
    with pytest.raises(ThrottledError):
        await gate.admit()  # 0 measured + 3 started since the last good sample
    assert measure.calls == 3  # the same period: not asked again
    measure.fail = None
    clock.now += 2.0
    await gate.admit()  # a good sample again (0) at t=110 shows all three
    assert await gate.in_flight() == 1  # only the one just admitted


async def test_the_sample_is_dated_when_asked_not_when_answered() -> None:
    measure, clock = Measure(depth=0), Clock()
    gate = admission(measure, clock, limit=5)
    await gate.admit()  # t=100: starting
    clock.now = 101.5
    measure.gate = asyncio.Event()
    measure.asked.clear()
    asking = asyncio.create_task(gate.in_flight())  # asked at 101.5 ...
    await measure.asked.wait()
    clock.now = 105.0
    gate.started()  # its StartExecution answers while the sample is on its way
    clock.now = 110.0  # ... answered at 110
    measure.gate.set()
    assert await asking == 1  # a sample asked at 101.5 cannot show a start of t=105


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        AdmissionLimits(max_in_flight=0)
    with pytest.raises(ValueError, match="positive"):
        AdmissionLimits(refresh_seconds=0)
    with pytest.raises(ValueError, match="negative"):
        AdmissionLimits(start_grace_seconds=-1)
    with pytest.raises(ValueError, match="positive"):
        AdmissionLimits(start_timeout_seconds=0)


class Inner:
    def __init__(self) -> None:
        self.checkouts: list[str] = []
        self.cancellations: list[str] = []

    async def start_checkout(self, command: Checkout, placed_in: str) -> bool:
        self.checkouts.append(command.idempotency_key)
        return False

    async def start_cancellation(self, command: CancelOrder) -> None:
        self.cancellations.append(command.idempotency_key)


def checkout(key: str) -> Checkout:
    return Checkout("c-0001", (CheckoutLine("p-0001", 1),), "tok_visa", key)


async def test_the_resolver_asks_admission_and_starting_passes_through() -> None:
    inner, measure, clock = Inner(), Measure(depth=0), Clock()
    workflows = AdmittedOrderWorkflows(inner, admission(measure, clock, limit=1))
    assert isinstance(workflows, CheckoutAdmission)
    await workflows.admit_checkout()
    await workflows.start_checkout(checkout("k-1"), "us-east-1")
    with pytest.raises(ThrottledError):
        await workflows.admit_checkout()
    await workflows.start_cancellation(CancelOrder("o-1", "c-1"))  # never gated
    assert inner.checkouts == ["k-1"] and inner.cancellations == ["c-1"]
