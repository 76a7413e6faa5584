"""Concurrent checkouts on scarce stock, on real PostgreSQL: Hypothesis chooses the orders
(lines, cards) and the interleaving (which saga takes its next step, step by step); a plain
test lets them all run at once. Whatever the order: nothing is oversold, no order is lost,
every order ends final with the reason its card or the stock explains, and the invariants
hold."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.postgres.pool import create_pool
from domain.saga import CHECKOUT, checkout_input, order_id_for
from domain.saga import checkout_execution_name as checkout_name
from tests.support import stack
from tests.support.payments import (
    TOKEN_DECLINED,
    TOKEN_INSUFFICIENT_FUNDS,
    TOKEN_VISA,
    FakePaymentProvider,
)
from tests.support.saga import (
    baseline,
    check_invariants,
    checkout_command,
    saga_activities,
    stock_shop,
)
from tests.support.saga_engine import Execution, InProcessSagaEngine

pytestmark = pytest.mark.integration

EXAMPLES = itertools.count()
# Why an order of each card may fail: the stock, or the card.
ALLOWED_FAILURES = {
    TOKEN_VISA: {"OUT_OF_STOCK"},
    TOKEN_DECLINED: {"OUT_OF_STOCK", "PAYMENT_DECLINED"},
    TOKEN_INSUFFICIENT_FUNDS: {"OUT_OF_STOCK", "INSUFFICIENT_FUNDS"},
}


@pytest.fixture(scope="module")
async def database(database_url: str, migrated_template: str) -> AsyncIterator[str]:
    """One database for all examples: each example stocks products of its own, and the
    invariants do not depend on what earlier examples left."""
    async with stack.database_from_template(database_url, migrated_template) as dsn:
        yield dsn


@pytest.fixture(scope="module")
async def pool(database: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(database, min_size=2, max_size=10)
    await stock_shop(pool, [], [{"id": "c-0001"}, {"id": "c-0002"}])
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
def provider() -> FakePaymentProvider:
    return FakePaymentProvider()


class Turns:
    """The gate of the in-process engine: every execution waits before each step until the
    test gives it the turn (or until `free`, which lets them all run)."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.changed = asyncio.Event()
        self.free = False

    async def gate(self, execution: Execution, step: str) -> None:
        if self.free:
            return
        turn = asyncio.get_running_loop().create_future()
        self.waiting[execution.name] = turn
        self.changed.set()
        await turn

    def give(self, name: str) -> None:
        self.waiting.pop(name).set_result(None)

    def follow(self, engine: InProcessSagaEngine) -> None:
        for execution in engine.executions.values():
            assert execution.task is not None
            execution.task.add_done_callback(lambda _: self.changed.set())

    async def until_all_wait(self, engine: InProcessSagaEngine) -> None:
        """Until every execution either waits for its turn or has ended."""
        while any(
            e.name not in self.waiting and e.task is not None and not e.task.done()
            for e in engine.executions.values()
        ):
            self.changed.clear()
            await self.changed.wait()

    def release_all(self) -> None:
        self.free = True
        for name in list(self.waiting):
            self.give(name)


orders_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "lines": st.lists(
                st.tuples(st.sampled_from([1, 2]), st.integers(1, 3)),
                min_size=1,
                max_size=2,
                unique_by=lambda line: line[0],
            ),
            "token": st.sampled_from(
                [TOKEN_VISA, TOKEN_VISA, TOKEN_DECLINED, TOKEN_INSUFFICIENT_FUNDS]
            ),
            "customer": st.sampled_from(["c-0001", "c-0002"]),
        }
    ),
    min_size=2,
    max_size=6,
)


async def stock_example(pool: asyncpg.Pool[Any], example: int, units: list[int]) -> list[str]:
    products = [f"p-x{example}n{n}" for n in (1, 2)]
    await stock_shop(
        pool,
        [
            {"id": product, "price": 100 * (n + 1), "available": available}
            for n, (product, available) in enumerate(zip(products, units, strict=True))
        ],
        [],
    )
    return products


async def start_checkouts(
    engine: InProcessSagaEngine, example: int, products: list[str], orders: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    started: dict[str, dict[str, Any]] = {}
    for number, order in enumerate(orders):
        command = checkout_command(
            {
                "customerId": order["customer"],
                "lines": [{"productId": products[p - 1], "quantity": q} for p, q in order["lines"]],
                "paymentToken": order["token"],
                "idempotencyKey": f"x{example}-{number}",
            }
        )
        order_id = order_id_for(command.customer_id, command.idempotency_key)
        await engine.start(CHECKOUT, checkout_name(order_id), checkout_input(command, "us-east-1"))
        started[order_id] = order
    return started


async def check_example(
    pool: asyncpg.Pool[Any], products: list[str], units: list[int], started: dict[str, Any]
) -> None:
    async with pool.acquire() as conn:
        orders = {
            row["id"]: row
            for row in await conn.fetch(
                "SELECT id, status, failure_reason FROM orders WHERE id = ANY($1::text[])",
                list(started),
            )
        }
        stock = {
            row["product_id"]: row
            for row in await conn.fetch(
                "SELECT * FROM inventory WHERE product_id = ANY($1::text[])", products
            )
        }
    # No lost order: every checkout has its order, and it ended.
    assert set(orders) == set(started)
    for order_id, order in started.items():
        row = orders[order_id]
        if row["status"] != "CONFIRMED":
            assert row["status"] == "FAILED", row
            assert row["failure_reason"] in ALLOWED_FAILURES[order["token"]], (order, row)
        else:
            assert order["token"] == TOKEN_VISA, (order, row)
    # No oversell: what was sold is what confirmed orders bought, and fits the stock.
    for product, initial in zip(products, units, strict=True):
        row = stock[product]
        assert row["sold"] <= initial and row["available"] + row["sold"] == initial, row
        bought = sum(
            q
            for order_id, order in started.items()
            for p, q in order["lines"]
            if products[p - 1] == product and orders[order_id]["status"] == "CONFIRMED"
        )
        assert row["sold"] == bought, (product, row, bought)


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    units=st.lists(st.integers(0, 4), min_size=2, max_size=2),
    orders=orders_strategy,
    data=st.data(),
)
async def test_random_interleavings_of_checkouts_on_scarce_stock(
    database: str,
    pool: asyncpg.Pool[Any],
    provider: FakePaymentProvider,
    units: list[int],
    orders: list[dict[str, Any]],
    data: st.DataObject,
) -> None:
    example = next(EXAMPLES)
    products = await stock_example(pool, example, units)
    before = await baseline(pool)
    turns = Turns()
    _, activities = saga_activities(pool, database, provider)
    engine = InProcessSagaEngine(activities.run, gate=turns.gate)
    started = await start_checkouts(engine, example, products, orders)

    turns.follow(engine)
    try:
        await turns.until_all_wait(engine)
        # Drawn by position in `orders`: names differ between runs of one example.
        names = [checkout_name(order_id) for order_id in started]
        while turns.waiting:
            ready = sorted(names.index(name) for name in turns.waiting)
            turns.give(names[data.draw(st.sampled_from(ready), label="next step")])
            await turns.until_all_wait(engine)
    finally:
        # Hypothesis may stop an example in the middle of a draw: never leave its sagas
        # parked, the next examples share the database.
        turns.release_all()
        await engine.settle()

    await check_example(pool, products, units, started)
    await check_invariants(pool, before, provider)


async def test_many_checkouts_at_once_on_scarce_stock(
    database: str, pool: asyncpg.Pool[Any], provider: FakePaymentProvider
) -> None:
    """No turns: twenty sagas race for five units, PostgreSQL's locks are all that order
    them."""
    example = next(EXAMPLES)
    units = [5, 5]
    products = await stock_example(pool, example, units)
    before = await baseline(pool)
    _, activities = saga_activities(pool, database, provider)
    engine = InProcessSagaEngine(activities.run)
    orders = [
        {
            "lines": [(1 + n % 2, 1), (2 - n % 2, 1 + n % 3)],
            "token": TOKEN_VISA,
            "customer": "c-0001",
        }
        for n in range(20)
    ]

    started = await start_checkouts(engine, example, products, orders)
    await engine.settle()

    await check_example(pool, products, units, started)
    await check_invariants(pool, before, provider)
    async with pool.acquire() as conn:
        sold = await conn.fetchval(
            "SELECT sum(sold) FROM inventory WHERE product_id = ANY($1::text[])", products
        )
    assert sold > 0, "with stock for several orders, some were confirmed"
