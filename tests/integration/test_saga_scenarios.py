"""The scenario files of workflows/testdata, replayed on real PostgreSQL with the ASL run
in-process (tests/support/saga_engine.py) and the fake card provider: each ends as its file
says, and the invariants hold. (test_saga_stepfunctions.py replays them on the local AWS
endpoint.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from adapters.postgres.pool import create_pool
from adapters.postgres.saga import PostgresSagaStore
from domain.saga import CANCEL, CHECKOUT, cancel_execution_name, cancel_input
from domain.saga import checkout_execution_name as execution_name
from tests.support.payments import FakePaymentProvider
from tests.support.saga import (
    Faults,
    Scenario,
    baseline,
    check_invariants,
    load_scenarios,
    order_row,
    saga_activities,
)
from tests.support.saga_engine import InProcessSagaEngine

pytestmark = pytest.mark.integration

SCENARIOS = load_scenarios()


@dataclass
class Saga:
    pool: asyncpg.Pool[Any]
    provider: FakePaymentProvider
    store: PostgresSagaStore
    engine: InProcessSagaEngine
    faults: Faults


@pytest.fixture
async def saga(pg_dsn: str) -> AsyncIterator[Saga]:
    pool = await create_pool(pg_dsn, min_size=1, max_size=8)
    provider = FakePaymentProvider()
    faults = Faults()
    store, activities = saga_activities(pool, pg_dsn, provider, faults)
    engine = InProcessSagaEngine(faults.wrap(activities.run))
    yield Saga(pool, provider, store, engine, faults)
    await pool.close()


async def check_outcome(saga: Saga, scenario: Scenario) -> None:
    expect = scenario.expect
    assert await order_row(saga.pool, scenario.order_id) == expect["order"]
    async with saga.pool.acquire() as conn:
        stock = {
            r["product_id"]: {k: r[k] for k in ("available", "reserved", "sold")}
            for r in await conn.fetch("SELECT * FROM inventory")
        }
        points = {r["id"]: r["loyalty_points"] for r in await conn.fetch("SELECT * FROM customers")}
    assert stock == expect["stock"]
    assert points == expect["loyaltyPoints"]
    assert saga.provider.money_taken().get(scenario.order_id, 0) == expect["moneyTaken"]
    if "authorizeCalls" in expect:
        calls = [c for c in saga.provider.calls if c[0] == "authorize"]
        assert len(calls) == expect["authorizeCalls"]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario(saga: Saga, scenario: Scenario) -> None:
    await scenario.stock(saga.pool)
    before = await baseline(saga.pool)

    execution = await saga.engine.run(
        CHECKOUT, execution_name(scenario.order_id), scenario.checkout_input
    )
    expected = scenario.expect["checkout"]
    assert (execution.status, execution.error) == (expected["execution"], expected["error"])
    assert execution.states == expected["states"]

    if scenario.cancel is not None:
        command = scenario.cancel
        name = cancel_execution_name(command.order_id, command.idempotency_key)
        cancellation = await saga.engine.run(CANCEL, name, cancel_input(command))
        expected = scenario.expect["cancel"]
        assert (cancellation.status, cancellation.error) == (
            expected["execution"],
            expected["error"],
        )
        assert cancellation.states == expected["states"]

    await check_outcome(saga, scenario)
    await check_invariants(saga.pool, before, saga.provider)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_a_whole_saga_run_again_changes_nothing(saga: Saga, scenario: Scenario) -> None:
    """The reconciler's re-run, or a duplicate execution: every step answers its recorded
    result (or refuses to go forward), and the end state is the same."""
    await scenario.stock(saga.pool)
    before = await baseline(saga.pool)
    name = execution_name(scenario.order_id)
    first = await saga.engine.run(CHECKOUT, name, scenario.checkout_input)
    order = await order_row(saga.pool, scenario.order_id)
    calls = len(saga.provider.calls)
    outbox = await _outbox_size(saga.pool)

    again = await saga.engine.run(CHECKOUT, name + "-r1", scenario.checkout_input)

    assert (again.status, again.error) == (first.status, first.error)
    assert await order_row(saga.pool, scenario.order_id) == order
    # Nothing new happened: no provider call, no event.
    assert len(saga.provider.calls) == calls
    assert await _outbox_size(saga.pool) == outbox
    await check_invariants(saga.pool, before, saga.provider)


async def test_concurrent_duplicate_executions_do_each_step_once(saga: Saga) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "visa")
    await scenario.stock(saga.pool)
    before = await baseline(saga.pool)
    name = execution_name(scenario.order_id)

    for suffix in ("", "-r1", "-r2"):
        await saga.engine.start(CHECKOUT, name + suffix, scenario.checkout_input)
    await saga.engine.settle()

    assert {e.status for e in saga.engine.executions.values()} == {"SUCCEEDED"}
    # They may all call the provider, with the same keys: one hold, one capture.
    assert (len(saga.provider.authorizations), len(saga.provider.captures)) == (1, 1)
    await check_outcome(saga, scenario)
    await check_invariants(saga.pool, before, saga.provider)


async def _outbox_size(pool: asyncpg.Pool[Any]) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM outbox"))
