"""The snapshot source: every aggregate once, as the event that projects it, page by page."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from adapters.postgres.pool import create_pool
from adapters.postgres.repositories import insert_order, upsert_customer, upsert_product
from adapters.postgres.snapshots import (
    PostgresSnapshotSource,
    load_customer,
    load_order,
    load_product,
)
from domain.events import CustomerChanged, OrderChanged, ProductChanged
from domain.model import Money, OrderStatus

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(pg_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def fill(pool: asyncpg.Pool[Any], products: int, customers: int, orders: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for n in range(1, products + 1):
            await upsert_product(
                conn, None, f"SKU-{n}", f"Thing {n}", None, "toys", Money(100 * n, "USD"), n
            )
        for n in range(1, customers + 1):
            await upsert_customer(
                conn, f"c-{n:04d}", f"Person {n}", f"p{n}@example.com", "eu-west-1"
            )
        for n in range(1, orders + 1):
            await insert_order(
                conn,
                f"o-{n:04d}",
                f"c-{1 + n % customers:04d}",
                [("p-0001", 1), (f"p-{1 + n % products:04d}", 2)],
                OrderStatus.PENDING,
                "eu-west-1",
                f"key-{n}",
            )


async def test_every_aggregate_comes_once_and_matches_its_snapshot(
    pool: asyncpg.Pool[Any],
) -> None:
    await fill(pool, products=23, customers=11, orders=17)
    # A batch size that divides none of the counts, and one that divides 11 exactly.
    for batch_size in (4, 11, 1000):
        source = PostgresSnapshotSource(pool, batch_size=batch_size)
        events = [event async for event in source.snapshots()]
        assert await source.count() == len(events) == 23 + 11 + 17
        keys = Counter((e.kind, getattr(e, e.kind.lower()).id) for e in events)
        assert set(keys.values()) == {1}
        assert Counter(kind for kind, _ in keys) == {"Product": 23, "Customer": 11, "Order": 17}
    async with pool.acquire() as conn:
        for event in events:
            match event:
                case ProductChanged(product=p):
                    assert p == await load_product(conn, p.id)
                case CustomerChanged(customer=c):
                    assert c == await load_customer(conn, c.id)
                case OrderChanged(order=o):
                    assert o == await load_order(conn, o.id)
                    assert len(o.lines) == 2
                    assert o.customer_name.startswith("Person ")


async def test_an_empty_shop_yields_nothing(pool: asyncpg.Pool[Any]) -> None:
    source = PostgresSnapshotSource(pool)
    assert await source.count() == 0
    assert [event async for event in source.snapshots()] == []


async def test_loading_a_missing_aggregate_gives_none(pool: asyncpg.Pool[Any]) -> None:
    async with pool.acquire() as conn:
        assert await load_product(conn, "p-9999") is None
        assert await load_customer(conn, "c-9999") is None
        assert await load_order(conn, "o-9999") is None
