"""The saga store's steps one by one on real PostgreSQL: idempotency per (order, step),
all-or-nothing reservations, the abort that stops forward steps for good, compensations that
undo exactly what was done, and the races between a slow provider call and a compensation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from typing import Any

import asyncpg
import pytest

from adapters.postgres.pool import create_pool
from adapters.postgres.saga import PostgresSagaStore
from domain import saga_compensations as compensations
from domain import saga_forward as forward
from domain.errors import BadRequestError, NotFoundError, OrderNotCancellableError
from domain.payments import PaymentDeclinedError, PaymentTimeoutError
from domain.saga import FailureReason, Step, StepError, checkout_input, order_id_for
from domain.saga_decisions import StepRule
from domain.saga_errors import InventoryInsufficientError, OrderAbortedError, SagaStateError
from tests.support.payments import TOKEN_VISA, FakePaymentProvider, Fault
from tests.support.saga import checkout_command, steps_recorded, stock_shop
from workflows.activities import Activities, StepFailure

pytestmark = pytest.mark.integration

REASON = FailureReason.INTERNAL_ERROR


class SlowAnswers:
    """The provider acts at once but its answer to the first `operation` call waits for
    `release`: the window in which a compensation can run."""

    def __init__(self, inner: FakePaymentProvider, operation: str) -> None:
        self.inner = inner
        self.operation = operation
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.inner, name)
        if name != self.operation:
            return call

        async def slow(**kwargs: Any) -> Any:
            result = await call(**kwargs)
            if not self.waiting.is_set():
                self.waiting.set()
                await self.release.wait()
            return result

        return slow


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(pg_dsn, min_size=1, max_size=6)
    await stock_shop(
        pool,
        [
            {"id": "p-0001", "price": 1000, "available": 3},
            {"id": "p-0002", "price": 250, "available": 10},
            {"id": "p-0003", "price": 100, "available": 10, "currency": "USD"},
        ],
        [{"id": "c-0001"}],
    )
    yield pool
    await pool.close()


@pytest.fixture
def provider() -> FakePaymentProvider:
    return FakePaymentProvider()


@pytest.fixture
def store(pool: asyncpg.Pool[Any], pg_dsn: str, provider: FakePaymentProvider) -> PostgresSagaStore:
    return PostgresSagaStore(pool, pg_dsn, provider)


def order_input(
    lines: list[tuple[str, int]], key: str = "k1", token: str = TOKEN_VISA
) -> tuple[str, Any, dict[str, Any]]:
    command = checkout_command(
        {
            "customerId": "c-0001",
            "lines": [{"productId": p, "quantity": q} for p, q in lines],
            "paymentToken": token,
            "idempotencyKey": key,
        }
    )
    order_id = order_id_for(command.customer_id, command.idempotency_key)
    return order_id, command, json.loads(checkout_input(command, "us-east-1"))


async def create(store: PostgresSagaStore, lines: list[tuple[str, int]], key: str = "k1") -> str:
    order_id, command, execution_input = order_input(lines, key)
    await store.create_order(order_id, "us-east-1", command, execution_input)
    return order_id


async def stock(pool: asyncpg.Pool[Any], product_id: str) -> tuple[int, int, int]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT available, reserved, sold FROM inventory WHERE product_id = $1", product_id
        )
    assert row is not None
    return row["available"], row["reserved"], row["sold"]


def cancellation(order_id: str) -> StepRule:
    return compensations.begin_cancellation({"orderId": order_id, "idempotencyKey": "c1"})


async def fetchval(pool: asyncpg.Pool[Any], query: str, *args: Any) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchval(query, *args)


async def test_a_redelivered_step_returns_its_result_and_changes_nothing(
    store: PostgresSagaStore, pool: asyncpg.Pool[Any]
) -> None:
    order_id = await create(store, [("p-0001", 2)])
    first = await store.run_step(order_id, forward.RESERVE_INVENTORY)
    events = await fetchval(pool, "SELECT count(*) FROM outbox")

    again = await store.run_step(order_id, forward.RESERVE_INVENTORY)

    assert again == first == {"reserved": [{"productId": "p-0001", "quantity": 2}]}
    assert await stock(pool, "p-0001") == (1, 2, 0)
    assert await fetchval(pool, "SELECT count(*) FROM outbox") == events
    assert await fetchval(pool, "SELECT count(*) FROM order_status_history") == 2


async def test_a_reservation_is_all_or_nothing(
    store: PostgresSagaStore, pool: asyncpg.Pool[Any]
) -> None:
    order_id = await create(store, [("p-0002", 4), ("p-0001", 4)])
    events = await fetchval(pool, "SELECT count(*) FROM outbox")

    with pytest.raises(InventoryInsufficientError, match="p-0001"):
        await store.run_step(order_id, forward.RESERVE_INVENTORY)

    assert await stock(pool, "p-0002") == (10, 0, 0)
    assert await stock(pool, "p-0001") == (3, 0, 0)
    assert await fetchval(pool, "SELECT count(*) FROM outbox") == events
    assert await steps_recorded(pool, order_id) == {Step.CREATE_ORDER}


async def test_create_order_refuses_what_it_cannot_price(
    store: PostgresSagaStore, pool: asyncpg.Pool[Any]
) -> None:
    with pytest.raises(NotFoundError):
        await create(store, [("p-0999", 1)])
    with pytest.raises(BadRequestError, match="currency"):
        await create(store, [("p-0001", 1), ("p-0003", 1)], key="k2")
    # Nothing of either was written, not even the saga's row.
    assert await fetchval(pool, "SELECT count(*) FROM orders") == 0
    assert await fetchval(pool, "SELECT count(*) FROM sagas") == 0
    # The activities turn both into the error the ASL catches into MarkOrderFailed.
    _, _, execution_input = order_input([("p-0999", 1)], "k3")
    with pytest.raises(StepFailure) as failure:
        await Activities(store).run(Step.CREATE_ORDER, execution_input)
    assert failure.value.error == StepError.ORDER_INVALID


async def test_once_a_compensation_began_no_forward_step_runs(
    store: PostgresSagaStore, pool: asyncpg.Pool[Any]
) -> None:
    order_id = await create(store, [("p-0001", 1)])
    assert await store.run_step(
        order_id, compensations.release_inventory(FailureReason.OUT_OF_STOCK)
    ) == {"released": []}

    with pytest.raises(OrderAbortedError):
        await store.run_step(order_id, forward.RESERVE_INVENTORY)
    # Even a step already recorded refuses: a re-run goes down the compensations instead.
    with pytest.raises(OrderAbortedError):
        await store.create_order(order_id, "us-east-1", *order_input([("p-0001", 1)])[1:])
    assert await stock(pool, "p-0001") == (3, 0, 0)

    result = await store.run_step(order_id, compensations.mark_order_failed(REASON, {}))
    # The first compensation's reason stands.
    assert result == {"status": "FAILED", "failureReason": FailureReason.OUT_OF_STOCK}


async def go_forward(store: PostgresSagaStore, order_id: str, until: str) -> None:
    steps = [
        (Step.RESERVE_INVENTORY, partial(store.run_step, rule=forward.RESERVE_INVENTORY)),
        (Step.AUTHORIZE_PAYMENT, store.authorize_payment),
        (Step.CAPTURE_PAYMENT, store.capture_payment),
        (Step.UPDATE_CUSTOMER, partial(store.run_step, rule=forward.UPDATE_CUSTOMER)),
        (Step.CONFIRM_ORDER, partial(store.run_step, rule=forward.CONFIRM_ORDER)),
    ]
    for step, run in steps:
        await run(order_id)
        if step == until:
            return


async def test_compensations_undo_exactly_what_was_done(
    store: PostgresSagaStore, pool: asyncpg.Pool[Any], provider: FakePaymentProvider
) -> None:
    order_id = await create(store, [("p-0001", 2), ("p-0002", 1)])
    await go_forward(store, order_id, until=Step.UPDATE_CUSTOMER)
    assert await stock(pool, "p-0001") == (1, 0, 2)
    assert await fetchval(pool, "SELECT loyalty_points FROM customers") == 22

    assert await store.run_step(order_id, compensations.revert_loyalty(REASON)) == {"reverted": 22}
    assert await store.refund_payment(order_id, REASON) == {"refunded": True}
    # Refunded, not voided: a captured authorization cannot be voided.
    assert await store.void_authorization(order_id, REASON) == {"voided": False}
    assert await store.run_step(order_id, compensations.release_inventory(REASON)) == {
        "released": [
            {"productId": "p-0001", "quantity": 2},
            {"productId": "p-0002", "quantity": 1},
        ],
        "from": "sold",
    }
    await store.run_step(order_id, compensations.mark_order_failed(REASON, {}))

    assert await stock(pool, "p-0001") == (3, 0, 0)
    assert await fetchval(pool, "SELECT loyalty_points FROM customers") == 0
    assert provider.money_taken() == {} and provider.holds() == {}
    assert [op for op, _ in provider.calls] == ["authorize", "capture", "refund"]


async def test_a_failed_order_keeps_nothing_or_is_not_marked(
    store: PostgresSagaStore, pool: asyncpg.Pool[Any]
) -> None:
    order_id = await create(store, [("p-0001", 1)])
    await go_forward(store, order_id, until=Step.CAPTURE_PAYMENT)
    # Straight to MarkOrderFailed, skipping the compensations: refused, the order as it was
    # (the reconciler's re-run then goes through the whole chain).
    with pytest.raises(SagaStateError, match="CAPTURED"):
        await store.run_step(order_id, compensations.mark_order_failed(REASON, {}))
    assert await fetchval(pool, "SELECT status FROM orders") == "CAPTURED"


async def test_a_checkout_compensation_leaves_a_confirmed_order_alone(
    store: PostgresSagaStore, pool: asyncpg.Pool[Any], provider: FakePaymentProvider
) -> None:
    order_id = await create(store, [("p-0001", 1)])
    await go_forward(store, order_id, until=Step.CONFIRM_ORDER)

    # A late failure answer of this checkout sends it into compensation: nothing happens,
    # and nothing is recorded...
    skipped = {"skipped": "the order is CONFIRMED"}
    assert await store.run_step(order_id, compensations.revert_loyalty(REASON)) == skipped
    assert await store.run_step(order_id, compensations.release_inventory(REASON)) == skipped
    assert await store.run_step(order_id, compensations.mark_order_failed(REASON, {})) == skipped
    assert await fetchval(pool, "SELECT status FROM orders") == "CONFIRMED"

    # ...so its cancellation later still finds every step to do.
    await store.run_step(order_id, cancellation(order_id))
    await store.refund_payment(order_id, REASON)
    await store.run_step(order_id, compensations.release_inventory(REASON))
    await store.run_step(order_id, compensations.revert_loyalty(REASON))
    assert await store.run_step(order_id, compensations.MARK_ORDER_CANCELLED) == {
        "status": "CANCELLED"
    }
    assert await stock(pool, "p-0001") == (3, 0, 0)
    assert provider.money_taken() == {}
    assert await fetchval(pool, "SELECT loyalty_points FROM customers") == 0


async def test_a_late_failure_of_its_checkout_leaves_a_cancelled_order_cancelled(
    store: PostgresSagaStore, pool: asyncpg.Pool[Any], provider: FakePaymentProvider
) -> None:
    order_id = await create(store, [("p-0001", 1)])
    await go_forward(store, order_id, until=Step.CONFIRM_ORDER)
    await store.run_step(order_id, cancellation(order_id))
    await store.refund_payment(order_id, FailureReason.CANCELLED_BY_CUSTOMER)
    for compensation in (compensations.release_inventory, compensations.revert_loyalty):
        await store.run_step(order_id, compensation(FailureReason.CANCELLED_BY_CUSTOMER))
    await store.run_step(order_id, compensations.MARK_ORDER_CANCELLED)
    calls = len(provider.calls)

    # The checkout's own chain, run late (its ConfirmOrder answer was lost): all done already.
    assert await store.refund_payment(order_id, REASON) == {"refunded": True}
    assert await store.void_authorization(order_id, REASON) == {"voided": False}
    assert await store.run_step(order_id, compensations.mark_order_failed(REASON, {})) == {
        "skipped": "the order is CANCELLED"
    }
    assert await fetchval(pool, "SELECT status FROM orders") == "CANCELLED"
    assert len(provider.calls) == calls


async def test_a_redelivered_refusal_is_refused_again(store: PostgresSagaStore) -> None:
    order_id, command, execution_input = order_input([("p-0001", 1)], token="tok_chargeDeclined")
    await store.create_order(order_id, "us-east-1", command, execution_input)
    await store.run_step(order_id, forward.RESERVE_INVENTORY)
    for _ in range(2):
        with pytest.raises(PaymentDeclinedError):
            await store.authorize_payment(order_id)


async def test_only_a_confirmed_order_can_be_cancelled(
    store: PostgresSagaStore, pool: asyncpg.Pool[Any]
) -> None:
    order_id = await create(store, [("p-0001", 1)])
    with pytest.raises(OrderNotCancellableError, match="PENDING"):
        await store.run_step(order_id, cancellation(order_id))
    # Nothing changed: the checkout goes on.
    await go_forward(store, order_id, until=Step.RESERVE_INVENTORY)
    assert await fetchval(pool, "SELECT cancel_input FROM sagas") is None


async def test_a_capture_whose_answer_was_lost_is_refunded_by_replaying_it(
    store: PostgresSagaStore, pool: asyncpg.Pool[Any], provider: FakePaymentProvider
) -> None:
    order_id = await create(store, [("p-0001", 1)])
    await go_forward(store, order_id, until=Step.AUTHORIZE_PAYMENT)
    provider.inject(Fault("capture", PaymentTimeoutError("no answer"), after_effect=True))

    with pytest.raises(PaymentTimeoutError):
        await store.capture_payment(order_id)
    assert provider.money_taken() == {order_id: 1000}  # the provider did capture
    assert await fetchval(pool, "SELECT status FROM payments") == "CAPTURING"

    assert await store.refund_payment(order_id, REASON) == {"refunded": True}
    assert await store.void_authorization(order_id, REASON) == {"voided": False}
    # The capture never counted as done here: the stock goes back from reserved.
    released = await store.run_step(order_id, compensations.release_inventory(REASON))
    assert released["from"] == "reserved"
    await store.run_step(order_id, compensations.mark_order_failed(REASON, {}))
    assert provider.money_taken() == {} and provider.holds() == {}


async def test_a_slow_capture_racing_its_refund_is_refunded_once(
    pool: asyncpg.Pool[Any], pg_dsn: str, provider: FakePaymentProvider
) -> None:
    slow = SlowAnswers(provider, "capture")
    store = PostgresSagaStore(pool, pg_dsn, slow)
    order_id = await create(store, [("p-0001", 1)])
    await go_forward(store, order_id, until=Step.AUTHORIZE_PAYMENT)

    capture = asyncio.create_task(store.capture_payment(order_id))
    await slow.waiting.wait()
    # Meanwhile the task timed out and the saga compensates: the capture is in flight.
    assert await store.refund_payment(order_id, REASON) == {"refunded": True}
    slow.release.set()
    with pytest.raises(OrderAbortedError):
        await capture

    assert await fetchval(pool, "SELECT status FROM payments") == "REFUNDED"
    assert len(provider.refunds) == 1 and provider.money_taken() == {}
    assert await store.void_authorization(order_id, REASON) == {"voided": False}
    await store.run_step(order_id, compensations.release_inventory(REASON))
    await store.run_step(order_id, compensations.mark_order_failed(REASON, {}))
    assert await stock(pool, "p-0001") == (3, 0, 0)


async def test_a_late_authorization_after_the_void_gave_up_is_voided_by_the_step(
    pool: asyncpg.Pool[Any], pg_dsn: str, provider: FakePaymentProvider
) -> None:
    slow = SlowAnswers(provider, "authorize")
    store = PostgresSagaStore(pool, pg_dsn, slow)
    order_id = await create(store, [("p-0001", 1)])
    await go_forward(store, order_id, until=Step.RESERVE_INVENTORY)

    authorize = asyncio.create_task(store.authorize_payment(order_id))
    await slow.waiting.wait()
    # The compensation replays the authorization to learn its outcome, and the provider
    # does not answer that either: it gives up (a hold lapses by itself).
    provider.inject(Fault("authorize", PaymentTimeoutError("no answer")))
    voided = await store.void_authorization(order_id, REASON)
    assert voided == {"voided": False, "abandoned": True}
    # Then the first answer arrives after all: the step releases the hold itself.
    slow.release.set()
    with pytest.raises(OrderAbortedError):
        await authorize

    assert provider.holds() == {}
    assert await fetchval(pool, "SELECT status FROM payments") == "VOIDED"


async def test_a_rerun_is_claimed_by_one_reconciler(
    store: PostgresSagaStore, pool: asyncpg.Pool[Any]
) -> None:
    order_id = await create(store, [("p-0001", 1)])
    [stalled] = await store.stalled(timedelta(0), limit=10)
    assert (stalled.order_id, stalled.saga) == (order_id, "checkout")

    async with pool.acquire() as conn:
        await conn.execute("UPDATE sagas SET updated_at = now() - interval '1 hour'")
    idle_for = timedelta(minutes=1)
    claims = await asyncio.gather(*(store.claim_rerun(order_id, idle_for) for _ in range(4)))

    assert sorted(claims, key=lambda c: c or 0) == [None, None, None, 1]
    # Just claimed: not idle any more, not stalled again until `idle_for` passed.
    assert await store.stalled(timedelta(minutes=1), limit=10) == []
