"""What the saga tests share: the shop they stock, the scenario files, the invariants they
check after every run, and fault injection points (the fakes of the task queue and of the
answers to the state machine are in tests/support/task_queue.py)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from adapters.postgres import repositories
from adapters.postgres.saga import PostgresSagaStore
from adapters.postgres.snapshots import load_customer, load_order, load_product
from domain.codec import customer_to_plain, order_to_plain, product_to_plain
from domain.commands import CancelOrder, Checkout, CheckoutLine
from domain.model import Money, OrderStatus
from domain.saga import checkout_input, loyalty_points_for, order_id_for
from tests.support.payments import FakePaymentProvider
from workflows.activities import INTERNAL_ERROR, Activities, StepFailure
from workflows.definitions import DEFINITIONS_DIR, SagaTiming

# Fast enough for tests (moto really sleeps between retries); IntervalSeconds cannot go
# below 1 in ASL, MaxDelaySeconds caps every wait at a second (full jitter: 0.5 s on average).
FAST_TIMING = SagaTiming(
    task_heartbeat_seconds=4,
    task_timeout_seconds=5,
    retry_interval_seconds=1,
    retry_max_delay_seconds=1,
    execution_timeout_seconds=300,
)

SCENARIOS_DIR = DEFINITIONS_DIR / "testdata"

# Where a step can be crashed: before each transaction commits ("<Step>" for the one that
# records the step, "<Step>:begin" for the first of a multi-transaction step), right after a
# provider call ("<Step>:provider"), and after the step returned but before the worker
# answered ("<Step>:answer", injected around the activities).
FORWARD_POINTS = (
    "CreateOrder",
    "CreateOrder:answer",
    "ReserveInventory",
    "ReserveInventory:answer",
    "AuthorizePayment:begin",
    "AuthorizePayment:provider",
    "AuthorizePayment",
    "AuthorizePayment:answer",
    "CapturePayment:begin",
    "CapturePayment:provider",
    "CapturePayment",
    "CapturePayment:answer",
    "UpdateCustomer",
    "UpdateCustomer:answer",
    "ConfirmOrder",
    "ConfirmOrder:answer",
)
COMPENSATION_POINTS = (
    "RevertLoyalty",
    "RevertLoyalty:answer",
    "RefundPayment:begin",
    "RefundPayment:provider",
    "RefundPayment",
    "RefundPayment:answer",
    "VoidAuthorization:begin",
    "VoidAuthorization:provider",
    "VoidAuthorization",
    "VoidAuthorization:answer",
    "ReleaseInventory",
    "ReleaseInventory:answer",
    "MarkOrderFailed",
    "MarkOrderFailed:answer",
)
CANCEL_POINTS = (
    "BeginCancellation",
    "BeginCancellation:answer",
    "RefundPayment:begin",
    "RefundPayment:provider",
    "RefundPayment",
    "RefundPayment:answer",
    "ReleaseInventory",
    "ReleaseInventory:answer",
    "RevertLoyalty",
    "RevertLoyalty:answer",
    "MarkOrderCancelled",
    "MarkOrderCancelled:answer",
)


# -- the shop ---------------------------------------------------------------------------------


async def stock_shop(
    pool: asyncpg.Pool[Any],
    products: Sequence[Mapping[str, Any]],
    customers: Sequence[Mapping[str, Any]],
) -> None:
    """Products {id, price, available[, currency]} and customers {id[, loyaltyPoints]}."""
    async with pool.acquire() as conn, conn.transaction():
        for product in products:
            await repositories.upsert_product(
                conn,
                product["id"],
                f"SKU-{product['id']}",
                f"Product {product['id']}",
                None,
                "books",
                Money(product["price"], product.get("currency", "EUR")),
                product["available"],
            )
        for customer in customers:
            await repositories.upsert_customer(
                conn,
                customer["id"],
                f"Customer {customer['id']}",
                f"{customer['id']}@example.com",
                "us-east-1",
                customer.get("loyaltyPoints", 0),
            )


def checkout_command(request: Mapping[str, Any]) -> Checkout:
    return Checkout(
        customer_id=request["customerId"],
        lines=tuple(CheckoutLine(line["productId"], line["quantity"]) for line in request["lines"]),
        payment_token=request["paymentToken"],
        idempotency_key=request["idempotencyKey"],
    )


@dataclass(frozen=True)
class Scenario:
    """One file of workflows/testdata: the shop, the checkout (and maybe a cancellation) to
    run, and what must come of it."""

    name: str
    data: dict[str, Any]

    @property
    def command(self) -> Checkout:
        return checkout_command(self.data["checkout"]["request"])

    @property
    def placed_in(self) -> str:
        return str(self.data["checkout"]["placedIn"])

    @property
    def order_id(self) -> str:
        return order_id_for(self.command.customer_id, self.command.idempotency_key)

    @property
    def checkout_input(self) -> str:
        return checkout_input(self.command, self.placed_in)

    @property
    def cancel(self) -> CancelOrder | None:
        cancel = self.data.get("cancel")
        return CancelOrder(self.order_id, cancel["idempotencyKey"]) if cancel else None

    @property
    def expect(self) -> dict[str, Any]:
        return dict(self.data["expect"])

    async def stock(self, pool: asyncpg.Pool[Any]) -> None:
        await stock_shop(pool, self.data["shop"]["products"], self.data["shop"]["customers"])


def load_scenarios() -> list[Scenario]:
    return [
        Scenario(path.stem.removeprefix("scenario-"), json.loads(path.read_text()))
        for path in sorted(Path(SCENARIOS_DIR).glob("scenario-*.json"))
    ]


# -- the invariants ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """What the invariants compare with, independent of the sagas that already ran (so
    tests may share a database): per product all its units (available + reserved + sold),
    per customer the points it has besides those of its confirmed orders."""

    units: dict[str, int]
    points: dict[str, int]


async def baseline(pool: asyncpg.Pool[Any]) -> Baseline:
    async with pool.acquire() as conn:
        units = {
            r["product_id"]: r["total"]
            for r in await conn.fetch(
                "SELECT product_id, available + reserved + sold AS total FROM inventory"
            )
        }
        points = {
            r["id"]: r["loyalty_points"]
            for r in await conn.fetch("SELECT id, loyalty_points FROM customers")
        }
        for order in await conn.fetch(
            "SELECT customer_id, total_amount FROM orders WHERE status = 'CONFIRMED'"
        ):
            points[order["customer_id"]] -= loyalty_points_for(order["total_amount"])
    return Baseline(units, points)


async def check_invariants(
    pool: asyncpg.Pool[Any], before: Baseline, provider: FakePaymentProvider | None = None
) -> None:
    """The saga's promises, once everything settled (and the reconciler ran):
    every order and every saga is finished; stock is conserved and nothing stays reserved;
    money is taken exactly for CONFIRMED orders (CANCELLED ones got it back); loyalty points
    are the sum over confirmed orders; and the newest event of every aggregate is its
    current snapshot (the projections equal a rebuild)."""
    async with pool.acquire() as conn:
        orders = await conn.fetch("SELECT id, customer_id, status, total_amount FROM orders")
        unfinished = [o["id"] for o in orders if not OrderStatus(o["status"]).is_final]
        assert not unfinished, f"orders left unfinished: {unfinished}"
        open_sagas = await conn.fetch(
            "SELECT order_id FROM sagas WHERE done_at IS NULL"
            " AND (checkout_input IS NOT NULL OR cancel_input IS NOT NULL)"
        )
        assert not open_sagas, f"sagas left unfinished: {[r['order_id'] for r in open_sagas]}"

        stock = await conn.fetch("SELECT product_id, available, reserved, sold FROM inventory")
        for row in stock:
            total = row["available"] + row["reserved"] + row["sold"]
            assert total == before.units[row["product_id"]], f"stock of {row['product_id']}: {row}"
            assert row["reserved"] == 0, f"stock left reserved: {row}"
        sold = await conn.fetch(
            """
            SELECT l.product_id, sum(l.quantity) AS sold FROM order_lines l
              JOIN orders o ON o.id = l.order_id WHERE o.status = 'CONFIRMED'
             GROUP BY l.product_id
            """
        )
        sold_by_product = {r["product_id"]: r["sold"] for r in sold}
        for row in stock:
            assert row["sold"] == sold_by_product.get(row["product_id"], 0), f"sold: {row}"

        confirmed = {o["id"]: o["total_amount"] for o in orders if o["status"] == "CONFIRMED"}
        payments = {
            r["order_id"]: r["status"]
            for r in await conn.fetch("SELECT order_id, status FROM payments")
        }
        for order in orders:
            status = payments.get(order["id"])
            if order["status"] == "CONFIRMED":
                assert status == "CAPTURED", f"{order['id']} is CONFIRMED, payment {status}"
            elif order["status"] == "CANCELLED":
                assert status == "REFUNDED", f"{order['id']} is CANCELLED, payment {status}"
            else:
                assert status in (None, "DECLINED", "ABANDONED", "VOIDED", "REFUNDED"), (
                    f"{order['id']} is {order['status']}, payment {status}"
                )
        if provider is not None:
            assert provider.money_taken() == confirmed, "money taken differs from CONFIRMED"
            assert provider.holds() == {}, "card holds left behind"

        points: dict[str, int] = defaultdict(int)
        for order in orders:
            if order["status"] == "CONFIRMED":
                points[order["customer_id"]] += loyalty_points_for(order["total_amount"])
        for row in await conn.fetch("SELECT id, loyalty_points FROM customers"):
            expected = before.points.get(row["id"], 0) + points[row["id"]]
            assert row["loyalty_points"] == expected, f"points of {row['id']}: {row}"

        await _check_outbox(conn)


async def _check_outbox(conn: Any) -> None:
    latest = await conn.fetch(
        """
        SELECT DISTINCT ON (aggregate_kind, aggregate_id)
               aggregate_kind, aggregate_id, payload::text AS payload
          FROM outbox ORDER BY aggregate_kind, aggregate_id, version DESC, id DESC
        """
    )
    for row in latest:
        kind, aggregate_id = row["aggregate_kind"], row["aggregate_id"]
        if kind == "Order":
            order = await load_order(conn, aggregate_id)
            current = order_to_plain(order) if order else None
        elif kind == "Product":
            product = await load_product(conn, aggregate_id)
            current = product_to_plain(product) if product else None
        else:
            customer = await load_customer(conn, aggregate_id)
            current = customer_to_plain(customer) if customer else None
        assert json.loads(row["payload"]) == current, f"{kind} {aggregate_id}: stale last event"


async def steps_recorded(pool: asyncpg.Pool[Any], order_id: str) -> set[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT step FROM saga_steps WHERE order_id = $1", order_id)
    return {row["step"] for row in rows}


async def order_row(pool: asyncpg.Pool[Any], order_id: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        order = await load_order(conn, order_id)
    assert order is not None, f"no order {order_id}"
    return {
        "status": order.status.value,
        "failureReason": order.failure_reason,
        "history": [change.status.value for change in order.history],
    }


# -- faults -----------------------------------------------------------------------------------


@dataclass
class Faults:
    """Raise `error` the first `times` times a point is reached: the store's checkpoint
    hook (`checkpoint`) and the activities wrapped by `wrap` (for "<Step>:answer")."""

    plan: dict[str, Callable[[], BaseException]] = field(default_factory=dict)
    reached: list[str] = field(default_factory=list)

    def at(self, point: str, error: Callable[[], BaseException]) -> None:
        self.plan[point] = error

    async def checkpoint(self, point: str) -> None:
        self.reached.append(point)
        error = self.plan.pop(point, None)
        if error is not None:
            raise error()

    def wrap(
        self, run_step: Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any]]]
    ) -> Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any]]]:
        async def run(step: str, state: Mapping[str, Any]) -> dict[str, Any]:
            result = await run_step(step, state)
            try:
                await self.checkpoint(f"{step}:answer")
            except Exception as exc:
                # The step committed, yet its answer is a failure.
                raise StepFailure(INTERNAL_ERROR, str(exc)) from exc
            return result

        return run


def saga_activities(
    pool: asyncpg.Pool[Any], dsn: str, provider: FakePaymentProvider, faults: Faults | None = None
) -> tuple[PostgresSagaStore, Activities]:
    store = PostgresSagaStore(
        pool, dsn, provider, checkpoint=faults.checkpoint if faults is not None else None
    )
    return store, Activities(store)
