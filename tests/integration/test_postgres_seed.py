"""The demo seed: once, deterministic, and all of it in the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from adapters.postgres.pool import create_pool
from adapters.postgres.seed import seed_demo_data
from adapters.postgres.snapshots import PostgresSnapshotSource
from domain.codec import event_to_plain
from domain.events import Event, OrderChanged
from domain.model import OrderStatus
from tests.support.stack import database_from_template

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(pg_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def all_snapshots(pool: asyncpg.Pool[Any]) -> list[Event]:
    return [event async for event in PostgresSnapshotSource(pool).snapshots()]


async def test_seed_fills_an_empty_shop_once(pool: asyncpg.Pool[Any]) -> None:
    assert await seed_demo_data(pool) is True
    assert await seed_demo_data(pool) is False
    async with pool.acquire() as conn:
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM products) AS products,"
            " (SELECT count(DISTINCT category) FROM products) AS categories,"
            " (SELECT count(*) FROM customers) AS customers,"
            " (SELECT count(*) FROM orders) AS orders,"
            " (SELECT count(*) FROM orders WHERE customer_id = 'c-0001') AS featured,"
            " (SELECT count(*) FROM outbox) AS events"
        )
        outbox = await conn.fetch("SELECT aggregate_kind, aggregate_id, payload FROM outbox")
    assert counts["products"] >= 240
    assert counts["categories"] == 8
    assert counts["customers"] == 50
    assert 15 <= counts["orders"] <= 25
    assert counts["featured"] >= 3
    # Every aggregate went to the outbox exactly once, as its current snapshot.
    snapshots = await all_snapshots(pool)
    assert counts["events"] == len(snapshots)
    assert sorted((r["aggregate_kind"], r["aggregate_id"], r["payload"]) for r in outbox) == sorted(
        (e.kind, event_to_plain(e)["id"], event_to_plain(e)) for e in snapshots
    )
    orders = [e.order for e in snapshots if isinstance(e, OrderChanged)]
    statuses = [o.status for o in orders]
    assert statuses.count(OrderStatus.CONFIRMED) > len(orders) / 2
    assert all(o.failure_reason == "PAYMENT_DECLINED" for o in orders if o.status.name == "FAILED")
    assert OrderStatus.FAILED in statuses


async def test_two_seeded_databases_hold_equal_snapshots(
    pool: asyncpg.Pool[Any], database_url: str, migrated_template: str
) -> None:
    async with database_from_template(database_url, migrated_template) as other_dsn:
        other = await create_pool(other_dsn, min_size=1, max_size=2)
        try:
            assert await seed_demo_data(pool)
            await asyncio.sleep(0.01)  # a different wall clock must not matter
            assert await seed_demo_data(other)
            assert await all_snapshots(pool) == await all_snapshots(other)
        finally:
            await other.close()


async def test_instances_starting_together_seed_once(pool: asyncpg.Pool[Any]) -> None:
    results = await asyncio.gather(seed_demo_data(pool), seed_demo_data(pool))
    assert sorted(results) == [False, True]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM customers") == 50
