"""A checkout's intent in the primary's PostgreSQL (adapters.postgres.checkout_intents): what
the reconciler of a promoted region re-runs when the lost primary's Step Functions took an
acknowledged checkout with it before CreateOrder ran."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from adapters.postgres.checkout_intents import PostgresCheckoutIntentsAt
from adapters.postgres.pool import RegionPool, create_pool
from adapters.postgres.saga import PostgresSagaStore
from adapters.postgres.topology import PostgresTopology
from domain.errors import StaleEpochError
from domain.model import RegionControl
from domain.saga import checkout_input, order_id_for
from tests.support.payments import TOKEN_VISA, FakePaymentProvider
from tests.support.saga import checkout_command, stock_shop

PRIMARY = RegionControl("us-east-1", epoch=1)


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(pg_dsn, min_size=1, max_size=4)
    await stock_shop(pool, [{"id": "p-0001", "price": 1000, "available": 3}], [{"id": "c-0001"}])
    await PostgresTopology(pool, pg_dsn).init(PRIMARY)
    yield pool
    await pool.close()


def checkout(key: str = "k1") -> tuple[str, Any, str]:
    command = checkout_command(
        {
            "customerId": "c-0001",
            "lines": [{"productId": "p-0001", "quantity": 1}],
            "paymentToken": TOKEN_VISA,
            "idempotencyKey": key,
        }
    )
    order_id = order_id_for(command.customer_id, command.idempotency_key)
    return order_id, command, checkout_input(command, "eu-west-1")


async def test_an_intent_is_a_stalled_checkout_until_its_saga_moves(
    pool: asyncpg.Pool[Any], pg_dsn: str
) -> None:
    intents = PostgresCheckoutIntentsAt(RegionPool(pg_dsn, pool))
    order_id, _, execution_input = checkout()
    # The first record is known to come before any step (the resolver reads no order) ...
    assert await intents.record(order_id, execution_input, PRIMARY) is True
    # ... a retried checkout is not.
    assert await intents.record(order_id, execution_input, PRIMARY) is False

    store = PostgresSagaStore(pool, pg_dsn, FakePaymentProvider())
    # Not idle yet: a saga that was just started is left alone ...
    assert await store.stalled(timedelta(minutes=1), limit=10) == []
    # ... and one whose execution died with its region is re-run with the same input.
    [stalled] = await store.stalled(timedelta(0), limit=10)
    assert (stalled.order_id, stalled.saga) == (order_id, "checkout")
    assert json.loads(stalled.execution_input) == json.loads(execution_input)


async def test_the_saga_runs_over_its_intent_and_a_late_intent_changes_nothing(
    pool: asyncpg.Pool[Any], pg_dsn: str
) -> None:
    intents = PostgresCheckoutIntentsAt(RegionPool(pg_dsn, pool))
    store = PostgresSagaStore(pool, pg_dsn, FakePaymentProvider())
    order_id, command, execution_input = checkout()
    await intents.record(order_id, execution_input, PRIMARY)
    await store.create_order(order_id, "eu-west-1", command, json.loads(execution_input))
    async with pool.acquire() as conn:
        before = await conn.fetchrow("SELECT * FROM sagas WHERE order_id = $1", order_id)
    # The saga was faster than the answer: the intent arrives after CreateOrder.
    other_id, other_command, other_input = checkout("k2")
    await store.create_order(other_id, "eu-west-1", other_command, json.loads(other_input))
    async with pool.acquire() as conn:
        other_before = await conn.fetchrow("SELECT * FROM sagas WHERE order_id = $1", other_id)
    # Not new: the order exists, and the checkout is answered with it.
    assert await intents.record(other_id, other_input, PRIMARY) is False
    async with pool.acquire() as conn:
        after = await conn.fetchrow("SELECT * FROM sagas WHERE order_id = $1", order_id)
        other_after = await conn.fetchrow("SELECT * FROM sagas WHERE order_id = $1", other_id)
    assert dict(after) == dict(before)
    assert dict(other_after) == dict(other_before)


async def test_an_intent_after_a_compensation_touched_the_saga_is_not_new(
    pool: asyncpg.Pool[Any], pg_dsn: str
) -> None:
    intents = PostgresCheckoutIntentsAt(RegionPool(pg_dsn, pool))
    order_id, _, execution_input = checkout()
    async with pool.acquire() as conn:
        # A step's first touch creates the row without an input (saga_sql.lock_and_load).
        await conn.execute("INSERT INTO sagas (order_id) VALUES ($1)", order_id)
    assert await intents.record(order_id, execution_input, PRIMARY) is False
    async with pool.acquire() as conn:
        recorded = await conn.fetchval(
            "SELECT checkout_input FROM sagas WHERE order_id = $1", order_id
        )
    assert recorded == json.loads(execution_input)


async def test_a_demoted_primary_records_nothing(pool: asyncpg.Pool[Any], pg_dsn: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute("UPDATE region_topology SET primary_region = 'eu-west-1', epoch = 2")
    intents = PostgresCheckoutIntentsAt(RegionPool(pg_dsn, pool))
    order_id, _, execution_input = checkout()
    with pytest.raises(StaleEpochError):
        await intents.record(order_id, execution_input, PRIMARY)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM sagas") == 0


async def test_an_intent_waits_for_a_promotion_under_way_and_then_records_nothing(
    pool: asyncpg.Pool[Any], pg_dsn: str
) -> None:
    """The epoch check holds the topology row FOR SHARE in the statement that inserts: a
    promotion that has the row is waited for, and its new epoch refuses the intent."""
    intents = PostgresCheckoutIntentsAt(RegionPool(pg_dsn, pool))
    order_id, _, execution_input = checkout()
    async with pool.acquire() as promoting, promoting.transaction():
        await promoting.execute(
            "UPDATE region_topology SET primary_region = 'eu-west-1', epoch = 2"
        )
        recording = asyncio.create_task(intents.record(order_id, execution_input, PRIMARY))
        await asyncio.sleep(0.3)
        assert not recording.done()  # waits for the promotion's transaction
    with pytest.raises(StaleEpochError):
        await recording
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM sagas") == 0


async def test_a_database_that_names_no_primary_yet_records(
    pool: asyncpg.Pool[Any], pg_dsn: str
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM region_topology")
    intents = PostgresCheckoutIntentsAt(RegionPool(pg_dsn, pool))
    order_id, _, execution_input = checkout()
    assert await intents.record(order_id, execution_input, PRIMARY) is True
    assert await intents.record(order_id, execution_input, PRIMARY) is False
