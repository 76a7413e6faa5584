"""A fault at every step and compensation of both sagas, at every point of each (before each
transaction commits, right after each provider call, after the step but before its answer),
of three kinds:

- crash: the worker dies there; the message comes back and the step runs again;
- lost: Step Functions loses the execution there; the reconciler re-runs the saga;
- fail: the step fails there with an unexpected error; the saga compensates (a failing
  compensation leaves the saga to the reconciler).

After everything settled and the reconciler ran, the invariants hold: every order final,
stock conserved, money taken exactly for CONFIRMED orders, points as the confirmed orders
say, the last event of each aggregate its current snapshot.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from adapters.postgres.pool import create_pool
from domain.commands import CancelOrder
from domain.saga import (
    CANCEL,
    CHECKOUT,
    cancel_execution_name,
    cancel_input,
    checkout_execution_name,
    checkout_input,
    order_id_for,
)
from tests.support import stack
from tests.support.payments import TOKEN_INSUFFICIENT_FUNDS, TOKEN_VISA, FakePaymentProvider
from tests.support.saga import (
    CANCEL_POINTS,
    COMPENSATION_POINTS,
    FORWARD_POINTS,
    Faults,
    baseline,
    check_invariants,
    checkout_command,
    order_row,
    saga_activities,
    stock_shop,
)
from tests.support.saga_engine import Crash, InProcessSagaEngine, Lost
from workflows.reconciler import Reconciler

pytestmark = pytest.mark.integration


class InjectedError(RuntimeError):
    pass


KINDS: dict[str, Callable[[], BaseException]] = {
    "crash": Crash,
    "lost": Lost,
    "fail": lambda: InjectedError("injected failure"),
}


@dataclass
class Run:
    pool: asyncpg.Pool[Any]
    provider: FakePaymentProvider
    faults: Faults
    engine: InProcessSagaEngine
    reconciler: Reconciler
    case: str


@pytest.fixture(scope="module")
async def database(database_url: str, migrated_template: str) -> AsyncIterator[str]:
    """One database for the module: creating one per case would cost more than the case.
    Each case has its own order (its own idempotency key) and the invariants do not depend
    on what ran before."""
    async with stack.database_from_template(database_url, migrated_template) as dsn:
        yield dsn


@pytest.fixture(scope="module")
async def pool(database: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(database, min_size=1, max_size=6)
    await stock_shop(
        pool,
        [
            {"id": "p-0001", "price": 1250, "available": 1000},
            {"id": "p-0002", "price": 300, "available": 1000},
        ],
        [{"id": "c-0001", "loyaltyPoints": 3}],
    )
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
def provider() -> FakePaymentProvider:
    """Shared, so that its ledger covers every order of the database."""
    return FakePaymentProvider()


@pytest.fixture
async def run(
    database: str, pool: asyncpg.Pool[Any], provider: FakePaymentProvider, request: Any
) -> Run:
    faults = Faults()
    store, activities = saga_activities(pool, database, provider, faults)
    engine = InProcessSagaEngine(faults.wrap(activities.run))
    # idle_for 0: every unfinished saga is stalled as soon as its execution is gone.
    reconciler = Reconciler(store, engine, idle_for=timedelta(0))
    # Each case its own order: its own idempotency key, named after the case.
    case = re.sub(r"[^A-Za-z0-9._:-]", "_", request.node.name)[:100]
    return Run(pool, provider, faults, engine, reconciler, case)


async def checkout(run: Run, token: str, again: str = "") -> str:
    command = checkout_command(
        {
            "customerId": "c-0001",
            "lines": [
                {"productId": "p-0001", "quantity": 2},
                {"productId": "p-0002", "quantity": 3},
            ],
            "paymentToken": token,
            "idempotencyKey": f"{run.case}-{token}{again}"[:128],
        }
    )
    order_id = order_id_for(command.customer_id, command.idempotency_key)
    await run.engine.run(
        CHECKOUT, checkout_execution_name(order_id), checkout_input(command, "us-east-1")
    )
    return order_id


async def cancel(run: Run, order_id: str) -> None:
    command = CancelOrder(order_id, "cancel-1")
    name = cancel_execution_name(order_id, command.idempotency_key)
    await run.engine.run(CANCEL, name, cancel_input(command))


async def settle(run: Run) -> None:
    """Let every execution end, then let the reconciler re-run what stopped, until nothing
    is left to re-run."""
    for _ in range(5):
        await run.engine.settle()
        if not await run.reconciler.run_once():
            return
    raise AssertionError("the reconciler keeps re-running sagas")


async def status(run: Run, order_id: str) -> str | None:
    async with run.pool.acquire() as conn:
        found = await conn.fetchval("SELECT status FROM orders WHERE id = $1", order_id)
    return str(found) if found is not None else None


def cases(points: tuple[str, ...]) -> list[Any]:
    return [pytest.param(point, kind, id=f"{kind}-{point}") for point in points for kind in KINDS]


@pytest.mark.parametrize(("point", "kind"), cases(FORWARD_POINTS))
async def test_fault_in_a_forward_step(run: Run, point: str, kind: str) -> None:
    before = await baseline(run.pool)
    run.faults.at(point, KINDS[kind])

    order_id = await checkout(run, TOKEN_VISA)
    await settle(run)

    assert point not in run.faults.plan, f"the saga never reached {point}"
    await check_invariants(run.pool, before, run.provider)
    final = await status(run, order_id)
    if kind == "crash":
        assert final == "CONFIRMED"  # a redelivery finishes the step
    elif kind == "lost":
        # Lost before the order was written: there is nothing to finish.
        assert final == (None if point == "CreateOrder" else "CONFIRMED")
    else:
        # An error answered after ConfirmOrder committed cannot undo a confirmed order.
        assert final == ("CONFIRMED" if point == "ConfirmOrder:answer" else "FAILED")


def _compensation_trigger(point: str) -> tuple[str, str | None]:
    """A checkout whose compensation reaches `point` with something to undo: a capture that
    fails leaves a hold to void; a failing ConfirmOrder leaves everything else to undo."""
    if point.startswith("VoidAuthorization"):
        return TOKEN_INSUFFICIENT_FUNDS, None
    return TOKEN_VISA, "ConfirmOrder"


@pytest.mark.parametrize(("point", "kind"), cases(COMPENSATION_POINTS))
async def test_fault_in_a_compensation(run: Run, point: str, kind: str) -> None:
    before = await baseline(run.pool)
    token, failing_step = _compensation_trigger(point)
    if failing_step is not None:
        run.faults.at(failing_step, lambda: InjectedError("the step that fails"))
    run.faults.at(point, KINDS[kind])

    order_id = await checkout(run, token)
    await settle(run)

    assert point not in run.faults.plan, f"the saga never reached {point}"
    await check_invariants(run.pool, before, run.provider)
    row = await order_row(run.pool, order_id)
    if kind in ("lost", "fail") and point == "RevertLoyalty":
        # Stopped before the first compensation committed: nothing was aborted, so the
        # re-run goes forward (the failure was a one-off) and confirms the order.
        assert row["status"] == "CONFIRMED"
    else:
        expected = "INSUFFICIENT_FUNDS" if token == TOKEN_INSUFFICIENT_FUNDS else "INTERNAL_ERROR"
        assert (row["status"], row["failureReason"]) == ("FAILED", expected)


@pytest.mark.parametrize(("point", "kind"), cases(CANCEL_POINTS))
async def test_fault_in_a_cancellation(run: Run, point: str, kind: str) -> None:
    before = await baseline(run.pool)
    order_id = await checkout(run, TOKEN_VISA)
    assert await status(run, order_id) == "CONFIRMED"
    run.faults.at(point, KINDS[kind])

    await cancel(run, order_id)
    await settle(run)

    assert point not in run.faults.plan, f"the saga never reached {point}"
    await check_invariants(run.pool, before, run.provider)
    final = await status(run, order_id)
    if point == "BeginCancellation" and kind in ("lost", "fail"):
        # The cancellation never began: the order stays as it was.
        assert final == "CONFIRMED"
    else:
        assert final == "CANCELLED"


async def test_the_cases_cover_every_point_a_saga_passes(run: Run) -> None:
    """A new transaction or provider call in a step shows up here until it gets its cases."""
    await checkout(run, TOKEN_INSUFFICIENT_FUNDS)  # reaches the void of a hold
    run.faults.at("ConfirmOrder", lambda: InjectedError("the step that fails"))
    await checkout(run, TOKEN_VISA)  # every other compensation has something to undo
    order_id = await checkout(run, TOKEN_VISA, again="-2")
    await cancel(run, order_id)
    await settle(run)

    reached = set(run.faults.reached)
    assert reached == set(FORWARD_POINTS) | set(COMPENSATION_POINTS) | set(CANCEL_POINTS)
