"""Repositories: each write advances a version and appends its event in the same transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from adapters.postgres import outbox
from adapters.postgres.pool import create_pool
from adapters.postgres.repositories import (
    emit_product,
    insert_order,
    upsert_customer,
    upsert_product,
)
from adapters.postgres.snapshots import load_product
from domain.codec import customer_to_plain, order_to_plain, product_to_plain
from domain.errors import BadRequestError, NotFoundError
from domain.events import CustomerChanged
from domain.model import Money, OrderStatus

pytestmark = pytest.mark.integration

USD = "USD"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(pg_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def outbox_rows(conn: Any) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT aggregate_kind, aggregate_id, version, payload, published_at"
            " FROM outbox ORDER BY id"
        )
    )


async def add_product(conn: Any, product_id: str | None = None, **changes: Any) -> Any:
    fields: dict[str, Any] = {
        "sku": "SKU-T-1",
        "name": "Test Kettle",
        "description": "Boils water.",
        "category": "kitchen",
        "price": Money(2599, USD),
        "available": 10,
    }
    fields.update(changes)
    return await upsert_product(conn, product_id, **fields)


async def test_upsert_customer_creates_then_bumps_and_appends_each_version(
    pool: asyncpg.Pool[Any],
) -> None:
    async with pool.acquire() as conn:
        async with conn.transaction():
            created = await upsert_customer(
                conn, "c-0100", "Ada Lovelace", "ada@example.com", "eu-west-1", at=T0
            )
        async with conn.transaction():
            moved = await upsert_customer(
                conn, "c-0100", "Ada Lovelace", "ada@example.com", "us-east-1", 7
            )
        async with conn.transaction():
            # No points given: an existing customer keeps hers.
            kept = await upsert_customer(
                conn, "c-0100", "Ada Lovelace", "a@example.com", "us-east-1"
            )
        rows = await outbox_rows(conn)
    assert (created.version, created.loyalty_points, created.updated_at) == (1, 0, T0)
    assert (moved.version, moved.home_region, moved.loyalty_points) == (2, "us-east-1", 7)
    assert moved.updated_at > T0
    assert (kept.version, kept.loyalty_points, kept.email) == (3, 7, "a@example.com")
    assert [(r["aggregate_kind"], r["aggregate_id"], r["version"]) for r in rows] == [
        ("Customer", "c-0100", 1),
        ("Customer", "c-0100", 2),
        ("Customer", "c-0100", 3),
    ]
    # The payload is the codec's plain snapshot (the pool's codec decodes jsonb).
    assert rows[-1]["payload"] == customer_to_plain(kept)
    assert all(r["published_at"] is None for r in rows)


async def test_a_rolled_back_write_leaves_neither_the_row_nor_its_event(
    pool: asyncpg.Pool[Any],
) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="abort"):
            async with conn.transaction():
                await upsert_customer(conn, "c-0200", "Bo", "bo@example.com", "eu-west-1")
                await add_product(conn)
                raise RuntimeError("abort")
        assert await conn.fetchval("SELECT count(*) FROM customers") == 0
        assert await conn.fetchval("SELECT count(*) FROM products") == 0
        assert await outbox_rows(conn) == []


async def test_append_refuses_to_run_outside_a_transaction(pool: asyncpg.Pool[Any]) -> None:
    async with pool.acquire() as conn:
        async with conn.transaction():
            customer = await upsert_customer(conn, "c-0300", "Cy", "cy@example.com", "eu-west-1")
        with pytest.raises(RuntimeError, match="inside the transaction"):
            await outbox.append(conn, [CustomerChanged(customer)])


async def test_upsert_product_allocates_ids_and_matches_an_existing_sku(
    pool: asyncpg.Pool[Any],
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        first = await add_product(conn, None, sku="SKU-A", at=T0)
        second = await add_product(conn, None, sku="SKU-B")
        renamed = await add_product(conn, None, sku="SKU-A", name="Better Kettle")
        explicit = await add_product(conn, "p-0041", sku="SKU-C")
        after_explicit = await add_product(conn, None, sku="SKU-D")
        rows = await outbox_rows(conn)
    assert (first.id, first.version, first.available, first.updated_at) == ("p-0001", 1, 10, T0)
    assert second.id == "p-0002"
    assert (renamed.id, renamed.name, renamed.version) == ("p-0001", "Better Kettle", 2)
    assert explicit.id == "p-0041"
    assert after_explicit.id == "p-0042"
    assert [(r["aggregate_id"], r["version"]) for r in rows] == [
        ("p-0001", 1),
        ("p-0002", 1),
        ("p-0001", 2),
        ("p-0041", 1),
        ("p-0042", 1),
    ]
    payload = rows[2]["payload"]
    assert payload == product_to_plain(renamed)


async def test_a_stock_change_is_a_product_change(pool: asyncpg.Pool[Any]) -> None:
    async with pool.acquire() as conn:
        async with conn.transaction():
            created = await add_product(conn, "p-0001", available=10)
        async with conn.transaction():
            restocked = await add_product(conn, "p-0001", available=25)
        assert restocked.available == 25
        assert restocked.version > created.version
        # A saga step reserving stock with its own SQL still advances the product's version.
        async with conn.transaction():
            await conn.execute(
                "UPDATE inventory SET available = available - 3, reserved = reserved + 3"
                " WHERE product_id = 'p-0001'"
            )
            reserved = await emit_product(conn, "p-0001")
        assert (reserved.available, reserved.version > restocked.version) == (22, True)
        # Stock never goes below zero.
        with pytest.raises(asyncpg.CheckViolationError):
            async with conn.transaction():
                await conn.execute(
                    "UPDATE inventory SET available = available - 100 WHERE product_id = 'p-0001'"
                )
        current = await load_product(conn, "p-0001")
        assert current == reserved
        versions = [r["version"] for r in await outbox_rows(conn)]
        assert versions == sorted(set(versions))


async def test_upsert_product_refuses_a_sku_of_another_product_and_bad_values(
    pool: asyncpg.Pool[Any],
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await add_product(conn, "p-0001", sku="SKU-A")
        with pytest.raises(BadRequestError, match="SKU-A already belongs to product p-0001"):
            await add_product(conn, "p-0002", sku="SKU-A")
        with pytest.raises(BadRequestError, match="negative"):
            await add_product(conn, "p-0003", sku="SKU-X", available=-1)
        with pytest.raises(BadRequestError, match="ISO 4217"):
            await add_product(conn, "p-0003", sku="SKU-X", price=Money(100, "usd"))


async def test_insert_order_prices_lines_from_the_catalogue(pool: asyncpg.Pool[Any]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await upsert_customer(conn, "c-0001", "Ada Lovelace", "ada@example.com", "us-east-1")
        await add_product(conn, "p-0001", sku="SKU-A", name="Kettle", price=Money(2599, USD))
        await add_product(conn, "p-0002", sku="SKU-B", name="Teapot", price=Money(1250, USD))
        history = [
            (OrderStatus.PENDING, T0, None),
            (OrderStatus.RESERVED, T0 + timedelta(seconds=1), None),
            (OrderStatus.FAILED, T0 + timedelta(seconds=2), "PAYMENT_DECLINED"),
        ]
        order = await insert_order(
            conn,
            "o-0001",
            "c-0001",
            [("p-0001", 2), ("p-0002", 1)],
            OrderStatus.FAILED,
            "us-east-1",
            "key-1",
            history,
            T0,
        )
        rows = await outbox_rows(conn)
        stock = await conn.fetchval("SELECT available FROM inventory WHERE product_id='p-0001'")
    assert order.total == Money(2 * 2599 + 1250, USD)
    assert [(line.product_name, line.quantity) for line in order.lines] == [
        ("Kettle", 2),
        ("Teapot", 1),
    ]
    assert order.customer_name == "Ada Lovelace"
    assert order.failure_reason == "PAYMENT_DECLINED"
    assert [h.status for h in order.history] == [s for s, _, _ in history]
    assert (order.created_at, order.updated_at, order.version) == (
        T0,
        T0 + timedelta(seconds=2),
        1,
    )
    assert (rows[-1]["aggregate_kind"], rows[-1]["payload"]) == ("Order", order_to_plain(order))
    assert stock == 10  # placing the record of an order does not move stock


async def test_insert_order_refuses_unknown_references_and_a_reused_idempotency_key(
    pool: asyncpg.Pool[Any],
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await upsert_customer(conn, "c-0001", "Ada", "ada@example.com", "us-east-1")
        await add_product(conn, "p-0001")
        args = (OrderStatus.PENDING, "us-east-1", "key-1")
        with pytest.raises(NotFoundError, match="product p-0999"):
            await insert_order(conn, "o-0001", "c-0001", [("p-0999", 1)], *args)
        with pytest.raises(NotFoundError, match="customer c-0999"):
            await insert_order(conn, "o-0001", "c-0999", [("p-0001", 1)], *args)
        with pytest.raises(BadRequestError):
            await insert_order(conn, "o-0001", "c-0001", [], *args)
        with pytest.raises(BadRequestError):
            await insert_order(conn, "o-0001", "c-0001", [("p-0001", 0)], *args)
        pending = await insert_order(conn, "o-0001", "c-0001", [("p-0001", 1)], *args)
        assert [h.status for h in pending.history] == [OrderStatus.PENDING]
        with pytest.raises(asyncpg.UniqueViolationError, match="idempotency"):
            await insert_order(conn, "o-0002", "c-0001", [("p-0001", 1)], *args)


async def test_renaming_a_customer_republishes_her_orders(pool: asyncpg.Pool[Any]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await upsert_customer(conn, "c-0001", "Ada Byron", "ada@example.com", "us-east-1")
        await add_product(conn, "p-0001")
        await insert_order(
            conn, "o-0001", "c-0001", [("p-0001", 1)], OrderStatus.PENDING, "us-east-1", "k"
        )
        await upsert_customer(conn, "c-0001", "Ada Lovelace", "ada@example.com", "us-east-1")
        rows = await outbox_rows(conn)
    last = rows[-1]
    assert (last["aggregate_kind"], last["aggregate_id"], last["version"]) == ("Order", "o-0001", 2)
    assert last["payload"]["customerName"] == "Ada Lovelace"
