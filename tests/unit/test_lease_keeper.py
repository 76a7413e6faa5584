"""The stream publisher's lease: one holder at a time, fencing tokens that only grow, takeover
after expiry, and a holder that stops before anyone else may start."""

from __future__ import annotations

import asyncio

import pytest

from domain.errors import ProjectionStoreUnavailableError
from subscriptions.lease import LeaseKeeper
from tests.support.fanout_fakes import FakeClock, InMemoryLeaseStore


def _keepers(
    store: InMemoryLeaseStore, wall: FakeClock, mono: FakeClock, *names: str
) -> list[LeaseKeeper]:
    return [
        LeaseKeeper(store, name, duration=5.0, renew_every=1.5, wall_clock=wall, monotonic=mono)
        for name in names
    ]


@pytest.fixture
def clocks() -> tuple[FakeClock, FakeClock]:
    return FakeClock(1_000_000.0), FakeClock(50.0)


async def test_one_holder_at_a_time(clocks: tuple[FakeClock, FakeClock]) -> None:
    store = InMemoryLeaseStore()
    a, b = _keepers(store, *clocks, "a", "b")
    await a.step()
    await b.step()
    assert a.token == 1
    assert b.token is None
    assert await asyncio.wait_for(a.acquired(), 1) == 1


async def test_a_standby_takes_over_after_expiry_with_a_greater_token(
    clocks: tuple[FakeClock, FakeClock],
) -> None:
    wall, mono = clocks
    store = InMemoryLeaseStore()
    a, b = _keepers(store, wall, mono, "a", "b")
    await a.step()
    wall.now += 4.9  # a died without renewing: not expired yet
    await b.step()
    assert b.token is None
    wall.now += 0.2
    await b.step()
    assert b.token == 2
    # a wakes up: its renewal is refused, it stops.
    await a.step()
    assert a.token is None


async def test_renewing_keeps_the_lease_and_its_token(clocks: tuple[FakeClock, FakeClock]) -> None:
    wall, mono = clocks
    store = InMemoryLeaseStore()
    a, b = _keepers(store, wall, mono, "a", "b")
    await a.step()
    for _ in range(10):
        wall.now += 1.5
        mono.now += 1.5
        await a.step()
        await b.step()
    assert (a.token, b.token) == (1, None)


async def test_release_lets_a_standby_take_over_at_once(
    clocks: tuple[FakeClock, FakeClock],
) -> None:
    store = InMemoryLeaseStore()
    a, b = _keepers(store, *clocks, "a", "b")
    await a.step()
    await a.release()
    assert a.token is None
    await b.step()
    assert b.token == 2


async def test_a_holder_that_cannot_renew_stops_before_its_lease_expires(
    clocks: tuple[FakeClock, FakeClock],
) -> None:
    wall, mono = clocks
    store = InMemoryLeaseStore()
    (a,) = _keepers(store, wall, mono, "a")
    await a.step()
    token = a.token
    assert token is not None
    lost = asyncio.create_task(a.lost(token))
    store.fail_with = ProjectionStoreUnavailableError("down")
    with pytest.raises(ProjectionStoreUnavailableError):
        await a.step()
    await asyncio.sleep(0)
    assert not lost.done()
    # 5 s lease - 1.5 s margin: it gives up 3.5 s after its last renewal, by its own clock.
    mono.now += 3.5
    with pytest.raises(ProjectionStoreUnavailableError):
        await a.step()
    await asyncio.wait_for(lost, 1)
    assert a.token is None


async def test_a_holder_whose_renewal_hangs_stops_on_time_all_the_same() -> None:
    store = InMemoryLeaseStore()
    keeper = LeaseKeeper(store, "a", duration=0.4, renew_every=0.1)
    await keeper.step()
    store.hang = True
    running = asyncio.create_task(keeper.run())
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(keeper.lost(1), 2)
    assert asyncio.get_running_loop().time() - started <= 0.4
    assert keeper.token is None
    running.cancel()


async def test_one_unanswered_renewal_costs_an_attempt_not_the_lease() -> None:
    store = InMemoryLeaseStore()
    keeper = LeaseKeeper(store, "a", duration=0.6, renew_every=0.2)
    await keeper.step()
    store.hangs = 1  # the next renewal is never answered
    running = asyncio.create_task(keeper.run())
    try:
        lost = asyncio.create_task(keeper.lost(1))
        await asyncio.sleep(1.5)  # two and a half leases
        assert not lost.done() and keeper.token == 1
        assert store.holds("a", 1)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_holder_that_gave_up_on_time_takes_its_lease_back_under_a_new_token(
    clocks: tuple[FakeClock, FakeClock],
) -> None:
    wall, mono = clocks
    store = InMemoryLeaseStore()
    a, b = _keepers(store, wall, mono, "a", "b")
    await a.step()
    store.fail_with = ProjectionStoreUnavailableError("slow")
    mono.now += 3.5
    with pytest.raises(ProjectionStoreUnavailableError):
        await a.step()
    assert a.token is None
    store.fail_with = None
    await b.step()
    assert b.token is None  # still a's lease in the store
    await a.step()
    assert a.token == 2


async def test_abandoning_a_fenced_token_ends_the_tenure(
    clocks: tuple[FakeClock, FakeClock],
) -> None:
    store = InMemoryLeaseStore()
    (a,) = _keepers(store, *clocks, "a")
    await a.step()
    lost = asyncio.create_task(a.lost(1))
    a.abandon(1)
    await asyncio.wait_for(lost, 1)
    assert a.token is None


def test_the_renewal_interval_must_fit_twice_in_the_lease() -> None:
    with pytest.raises(ValueError, match="renew_every"):
        LeaseKeeper(InMemoryLeaseStore(), "a", duration=3.0, renew_every=1.5)
