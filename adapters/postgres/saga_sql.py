"""The saga steps' SQL: lock and load an order's SagaState, and apply the writes a rule
decided (domain.saga_decisions), each changed aggregate followed by its event in the outbox
(repositories.emit_*). Everything runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_never

from adapters.postgres import repositories
from adapters.postgres.pool import Connection
from domain.model import Money, OrderStatus
from domain.payments import PaymentStatus
from domain.saga_decisions import (
    AbortSaga,
    AddPoints,
    InsertFailedOrder,
    InsertPayment,
    MoveStock,
    Record,
    SaveCheckoutInput,
    SetStatus,
    StartCancellation,
    StockColumn,
    UpdatePayment,
    Write,
)
from domain.saga_errors import SagaStateError
from domain.saga_state import OrderState, PaymentState, SagaState

# Read after the saga's lock is held, so it sees whatever the previous holder committed.
_LOAD = """
WITH lines AS (
    SELECT product_id, sum(quantity)::integer AS quantity
      FROM order_lines WHERE order_id = $1 GROUP BY product_id
)
SELECT o.status, o.total_amount, o.currency,
       p.status AS payment_status, p.amount AS payment_amount,
       p.currency AS payment_currency, p.authorization_id, p.capture_id,
       (SELECT jsonb_object_agg(step, result) FROM saga_steps WHERE order_id = $1) AS recorded,
       (SELECT jsonb_agg(jsonb_build_array(product_id, quantity) ORDER BY product_id)
          FROM lines) AS lines
  FROM (SELECT $1::text AS id) AS k
  LEFT JOIN orders o ON o.id = k.id
  LEFT JOIN payments p ON p.order_id = k.id
"""


async def lock_and_load(conn: Connection, order_id: str, *, reads_stock: bool) -> SagaState:
    """Lock the order's saga row (the steps of one order never interleave), then load what a
    rule sees; with `reads_stock`, the stock rows of its lines are locked and read too."""
    # Created on first touch (a compensation may be the first to touch an order) and locked
    # in one statement: the row it inserts is ours until commit, and on a conflict DO UPDATE
    # waits for and locks the existing row as FOR UPDATE does, returning its latest version.
    # One round trip where an INSERT and a SELECT ... FOR UPDATE took two, in every step.
    saga = await conn.fetchrow(
        "INSERT INTO sagas AS s (order_id) VALUES ($1)"
        " ON CONFLICT (order_id) DO UPDATE SET order_id = s.order_id"
        " RETURNING s.checkout_input, s.cancel_input, s.aborted_at, s.abort_reason",
        order_id,
    )
    assert saga is not None  # inserted, or the existing row locked
    row = await conn.fetchrow(_LOAD, order_id)
    assert row is not None  # one row, whatever exists
    order = None
    if row["status"] is not None:
        lines = {product_id: quantity for product_id, quantity in row["lines"] or []}
        total = Money(row["total_amount"], row["currency"])
        order = OrderState(OrderStatus(row["status"]), total, lines)
    available = None
    if reads_stock:
        available = await _lock_stock(conn, order.lines if order is not None else {})
    payment = None
    if row["payment_status"] is not None:
        payment = PaymentState(
            PaymentStatus(row["payment_status"]),
            Money(row["payment_amount"], row["payment_currency"]),
            row["authorization_id"],
            row["capture_id"],
        )
    return SagaState(
        order_id=order_id,
        checkout_input=saga["checkout_input"],
        aborted=saga["aborted_at"] is not None,
        abort_reason=saga["abort_reason"],
        cancelling=saga["cancel_input"] is not None,
        order=order,
        payment=payment,
        recorded=row["recorded"] or {},
        available=available,
    )


async def _lock_stock(conn: Connection, lines: Mapping[str, int]) -> dict[str, int]:
    """Lock the stock rows of `lines` in product order; returns what is available."""
    rows = await conn.fetch(
        "SELECT product_id, available FROM inventory WHERE product_id = ANY($1::text[])"
        " ORDER BY product_id FOR UPDATE",
        list(lines),
    )
    return {row["product_id"]: row["available"] for row in rows}


async def apply(conn: Connection, order_id: str, writes: tuple[Write, ...]) -> None:
    for write in writes:
        match write:
            case Record(step, result, done):
                # The step's result and the saga's clock in one statement (one round trip).
                await conn.execute(
                    "WITH recorded AS ("
                    " INSERT INTO saga_steps (order_id, step, result) VALUES ($1, $2, $3))"
                    " UPDATE sagas SET updated_at = now(),"
                    " done_at = CASE WHEN $4 THEN now() ELSE done_at END WHERE order_id = $1",
                    order_id,
                    step,
                    result,
                    done,
                )
            case AbortSaga(reason):
                await conn.execute(
                    "UPDATE sagas SET aborted_at = now(), abort_reason = $2, updated_at = now()"
                    " WHERE order_id = $1",
                    order_id,
                    reason,
                )
            case StartCancellation(execution_input):
                await conn.execute(
                    "UPDATE sagas SET cancel_input = $2, done_at = NULL WHERE order_id = $1",
                    order_id,
                    dict(execution_input),
                )
            case SaveCheckoutInput(execution_input):
                await conn.execute(
                    "UPDATE sagas SET checkout_input = $2 WHERE order_id = $1",
                    order_id,
                    dict(execution_input),
                )
            case InsertPayment(status, amount):
                await conn.execute(
                    "INSERT INTO payments (id, order_id, status, amount, currency)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    f"pay-{order_id}",
                    order_id,
                    status.value,
                    amount.amount,
                    amount.currency,
                )
            case UpdatePayment():
                await _update_payment(conn, order_id, write)
            case MoveStock(lines, source, target):
                await _lock_stock(conn, lines)
                await _move_stock(conn, lines, source, target)
            case AddPoints(points):
                await _add_points(conn, order_id, points)
            case SetStatus(status, reason):
                await _set_status(conn, order_id, status, reason)
            case InsertFailedOrder():
                await _insert_failed_order(conn, order_id, write)
            case _:
                assert_never(write)


async def _update_payment(conn: Connection, order_id: str, update: UpdatePayment) -> None:
    await conn.execute(
        """
        UPDATE payments
           SET status = $2, updated_at = now(),
               authorization_id = COALESCE($4, authorization_id),
               capture_id = COALESCE($5, capture_id),
               refund_id = COALESCE($6, refund_id)
         WHERE order_id = $1 AND status = ANY($3::text[])
        """,
        order_id,
        update.status.value,
        [status.value for status in update.when],
        update.authorization_id,
        update.capture_id,
        update.refund_id,
    )


async def _move_stock(
    conn: Connection, lines: Mapping[str, int], source: StockColumn, target: StockColumn
) -> None:
    """Move each line's quantity from one stock column to another (locked by the caller),
    then append each product's new snapshot (its `available` is part of it)."""
    # Column names are not parameters: only a StockColumn's own value reaches the SQL.
    source_column, target_column = StockColumn(source).value, StockColumn(target).value
    await conn.execute(
        f"""
        UPDATE inventory i
           SET {source_column} = i.{source_column} - l.quantity,
               {target_column} = i.{target_column} + l.quantity
          FROM unnest($1::text[], $2::integer[]) AS l(product_id, quantity)
         WHERE i.product_id = l.product_id
        """,
        list(lines),
        list(lines.values()),
    )
    for product_id in lines:
        await repositories.emit_product(conn, product_id)


async def _add_points(conn: Connection, order_id: str, points: int) -> None:
    customer_id = await conn.fetchval(
        """
        UPDATE customers c SET loyalty_points = c.loyalty_points + $2, updated_at = now()
          FROM orders o
         WHERE o.id = $1 AND c.id = o.customer_id
        RETURNING c.id
        """,
        order_id,
        points,
    )
    if customer_id is None:
        raise SagaStateError(f"order {order_id} has no customer")
    await repositories.emit_customer(conn, customer_id)


async def _set_status(
    conn: Connection, order_id: str, status: OrderStatus, reason: str | None
) -> None:
    """A new status with its history entry, and the order's event."""
    await conn.execute(
        """
        UPDATE orders
           SET status = $2, updated_at = now(),
               failure_reason = CASE WHEN $3::text IS NULL THEN failure_reason ELSE $3 END
         WHERE id = $1
        """,
        order_id,
        status.value,
        reason,
    )
    await conn.execute(
        """
        INSERT INTO order_status_history (order_id, seq, status, at, reason)
        SELECT $1, COALESCE(max(seq), 0) + 1, $2, now(), $3
          FROM order_status_history WHERE order_id = $1
        """,
        order_id,
        status.value,
        reason,
    )
    await repositories.emit_order(conn, order_id)


async def _insert_failed_order(conn: Connection, order_id: str, shell: InsertFailedOrder) -> None:
    failed = OrderStatus.FAILED.value
    inserted = await conn.fetchval(
        """
        INSERT INTO orders (id, customer_id, status, currency, total_amount, failure_reason,
                            placed_in, idempotency_key)
        SELECT $1, c.id, $6, 'XXX', 0, $3, $4, $5 FROM customers c WHERE c.id = $2
        ON CONFLICT DO NOTHING
        RETURNING id
        """,
        order_id,
        shell.customer_id,
        shell.reason,
        shell.placed_in,
        shell.idempotency_key,
        failed,
    )
    if inserted is None:
        return
    await conn.execute(
        "INSERT INTO order_status_history (order_id, seq, status, at, reason)"
        " VALUES ($1, 1, $2, now(), $3)",
        order_id,
        failed,
        shell.reason,
    )
    await repositories.emit_order(conn, order_id)
