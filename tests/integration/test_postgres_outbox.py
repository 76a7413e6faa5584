"""The outbox relay's side: drain once, share work with SKIP LOCKED, wake on NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from adapters.postgres import outbox
from adapters.postgres.outbox import LISTENER_APPLICATION_NAME, PostgresOutbox
from adapters.postgres.pool import create_pool
from domain.events import CustomerChanged, Event
from domain.model import Customer

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def customer_event(number: int, version: int = 1) -> CustomerChanged:
    return CustomerChanged(
        Customer(
            id=f"c-{number:04d}",
            name=f"Customer {number}",
            email=f"customer{number}@example.com",
            home_region="eu-west-1",
            loyalty_points=number,
            updated_at=T0,
            version=version,
        )
    )


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(pg_dsn, min_size=1, max_size=6)
    yield pool
    await pool.close()


@pytest.fixture
async def relay(pool: asyncpg.Pool[Any], pg_dsn: str) -> AsyncIterator[PostgresOutbox]:
    box = PostgresOutbox(pool, pg_dsn, reconnect_delay=0.05, max_reconnect_delay=0.2)
    yield box
    await box.aclose()


async def append_committed(pool: asyncpg.Pool[Any], events: Sequence[Event]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.append(conn, events)


class Recorder:
    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.batches: list[list[Event]] = []
        self.delay = delay
        self.fail = fail

    async def __call__(self, events: Sequence[Event]) -> None:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("projector down")
        self.batches.append(list(events))

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]


async def test_drain_hands_each_event_once_oldest_first(
    pool: asyncpg.Pool[Any], relay: PostgresOutbox
) -> None:
    events = [customer_event(n) for n in range(1, 6)]
    await append_committed(pool, events)
    handle = Recorder()
    assert await relay.drain(handle, batch_size=3) == 3
    assert await relay.drain(handle, batch_size=3) == 2
    assert await relay.drain(handle, batch_size=3) == 0
    assert [len(b) for b in handle.batches] == [3, 2]
    assert handle.events == events
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def test_events_appended_without_the_json_codec_decode_the_same(
    pool: asyncpg.Pool[Any], relay: PostgresOutbox, pg_dsn: str
) -> None:
    raw = await asyncpg.connect(pg_dsn)  # no jsonb codec on this one
    try:
        async with raw.transaction():
            await outbox.append(raw, [customer_event(1)])
    finally:
        await raw.close()
    handle = Recorder()
    await relay.drain(handle, batch_size=10)
    assert handle.events == [customer_event(1)]


async def test_a_failing_handler_leaves_the_events_for_a_later_drain(
    pool: asyncpg.Pool[Any], relay: PostgresOutbox
) -> None:
    await append_committed(pool, [customer_event(1), customer_event(2)])
    with pytest.raises(RuntimeError, match="projector down"):
        await relay.drain(Recorder(fail=True), batch_size=10)
    handle = Recorder()
    assert await relay.drain(handle, batch_size=10) == 2
    assert handle.events == [customer_event(1), customer_event(2)]


async def test_concurrent_drains_share_the_events_without_duplicates(
    pool: asyncpg.Pool[Any], relay: PostgresOutbox
) -> None:
    events = [customer_event(n) for n in range(1, 61)]
    await append_committed(pool, events)
    first, second = Recorder(delay=0.05), Recorder(delay=0.05)

    async def drain_all(handle: Recorder) -> None:
        while await relay.drain(handle, batch_size=5):
            pass

    await asyncio.gather(drain_all(first), drain_all(second))
    handed = first.events + second.events
    assert len(handed) == len(events)
    assert {e.customer.id for e in handed} == {e.customer.id for e in events}  # type: ignore[union-attr]
    # Both relays did work at the same time: SKIP LOCKED let the second pass the first.
    assert first.events and second.events


async def test_notifications_yield_when_listening_then_after_each_commit(
    pool: asyncpg.Pool[Any], relay: PostgresOutbox
) -> None:
    stream = relay.notifications()
    # The first turn comes as soon as it listens: events committed before are waiting.
    await asyncio.wait_for(anext(stream), timeout=5)
    pending = asyncio.ensure_future(anext(stream))
    async with pool.acquire() as conn, conn.transaction():
        await outbox.append(conn, [customer_event(1)])
        await asyncio.sleep(0.3)
        assert not pending.done(), "NOTIFY must wait for the commit"
    await asyncio.wait_for(pending, timeout=1)
    await stream.aclose()


async def test_a_burst_of_commits_gives_one_turn(
    pool: asyncpg.Pool[Any], relay: PostgresOutbox
) -> None:
    stream = relay.notifications()
    await asyncio.wait_for(anext(stream), timeout=5)
    # The consumer is busy (not iterating) while five transactions commit.
    for n in range(1, 6):
        await append_committed(pool, [customer_event(n)])
    await asyncio.sleep(0.3)
    await asyncio.wait_for(anext(stream), timeout=1)
    quiet = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.3)
    assert not quiet.done(), "the burst was already reported"
    await append_committed(pool, [customer_event(6)])
    await asyncio.wait_for(quiet, timeout=1)
    await stream.aclose()


async def test_notifications_reconnect_and_yield_after_the_connection_drops(
    pool: asyncpg.Pool[Any], relay: PostgresOutbox
) -> None:
    stream = relay.notifications()
    await asyncio.wait_for(anext(stream), timeout=5)
    async with pool.acquire() as conn:
        terminated = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1 AND datname = current_database()",
            LISTENER_APPLICATION_NAME,
        )
    assert terminated == 1
    # Events may have been committed while nobody listened: one turn after reconnecting.
    await asyncio.wait_for(anext(stream), timeout=5)
    # And the new connection listens.
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.1)
    await append_committed(pool, [customer_event(1)])
    await asyncio.wait_for(pending, timeout=1)
    await stream.aclose()


async def test_aclose_ends_the_notifications(relay: PostgresOutbox) -> None:
    stream = relay.notifications()
    await asyncio.wait_for(anext(stream), timeout=5)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    await relay.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, timeout=2)


async def test_notifications_wait_for_an_unreachable_database(
    pool: asyncpg.Pool[Any],
) -> None:
    # Nothing listens on port 1: the listener keeps retrying (it never raises) until closed.
    box = PostgresOutbox(
        pool, "postgresql://postgres@127.0.0.1:1/none", connect_timeout=0.2, reconnect_delay=0.05
    )
    pending = asyncio.ensure_future(anext(box.notifications()))
    await asyncio.sleep(0.3)
    assert not pending.done()
    await box.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, timeout=2)
