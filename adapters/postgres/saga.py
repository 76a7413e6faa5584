"""The sagas' steps on the relational model (workflows.ports.SagaStore and SagaLedger).

Every step and compensation does its work in one transaction that changes the model, appends
the new snapshots to the outbox (repositories.emit_*) and records the step's result in
`saga_steps` (the payment steps add a first transaction, before the provider call: see below).
A step that finds its result recorded returns it and changes nothing, so a redelivered task,
two executions racing, or a whole saga re-run from the start each do the work once.

Ordering. Each transaction first locks the order's row in `sagas`: the steps of one order
never interleave. Stock rows are then locked in product order and the customer row last, so
steps of different orders cannot deadlock each other (a deadlock with some other writer
surfaces as StepContentionError, which the state machine retries).

Aborting. The first compensation sets `sagas.aborted_at` (with the failure reason) under that
lock; every forward step checks it under the same lock and refuses with Order.Aborted. So a
forward step either committed before the compensation started (and is undone by it) or never
commits: a re-run saga can never go forward again. Compensations undo only what the recorded
forward steps did, so running the whole chain is always safe; MarkOrderFailed and
MarkOrderCancelled refuse an order that still holds money, stock or points, which sends a
skipped compensation back through the reconciler instead of into a final status.

Payments. The provider is called between two transactions, never inside one (a slow provider
must not hold row locks): the first records the intent (AUTHORIZING / CAPTURING), the call uses
an idempotency key derived from (order, step), the second records the outcome. An intent
without an outcome (a crash, a timeout) is an unknown: the compensations resolve it by
replaying the call with the same key, which returns the first outcome at the provider. Only
an authorization may stay unknown (ABANDONED: a hold lapses by itself and takes no money);
if its answer turns up after all, the step that asked releases the hold.

Errors: the refusals are the domain's (domain.saga_errors: InventoryInsufficientError,
OrderAbortedError, SagaStateError); a deadlock or serialization failure is
StepContentionError, a BackendUnavailableError: the state machine retries it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import asyncpg

from adapters.postgres import repositories
from adapters.postgres.errors import RelationalStoreUnavailableError
from adapters.postgres.pool import UNREACHABLE, Connection
from adapters.postgres.topology import EpochFence
from domain.commands import Checkout
from domain.errors import BackendUnavailableError, OrderNotCancellableError
from domain.model import Money, OrderStatus
from domain.payments import (
    PaymentDeclinedError,
    PaymentInsufficientFundsError,
    PaymentProviderUnavailableError,
    PaymentTimeoutError,
)
from domain.saga import CANCEL, CHECKOUT, FailureReason, Step, loyalty_points_for
from domain.saga_errors import InventoryInsufficientError, OrderAbortedError, SagaStateError

log = logging.getLogger(__name__)

ACQUIRE_TIMEOUT = 5.0

StepResult = dict[str, Any]
# Called inside every transaction just before it commits, and right after every provider
# call, with a label ("ReserveInventory", "AuthorizePayment:begin", "…:provider"). Production
# passes nothing; the tests raise there to crash a step at each point.
Checkpoint = Callable[[str], Awaitable[None]]

# The provider's refusals: final answers, recorded as such (a retry would get them again).
_REFUSED = (PaymentDeclinedError, PaymentInsufficientFundsError)
# PostgreSQL went away: before the step (unreachable) or during it (the connection dropped,
# and the transaction with it). Either way nothing was committed; the step may run again.
_LOST: tuple[type[BaseException], ...] = (*UNREACHABLE, asyncpg.ConnectionDoesNotExistError)
# Payment statuses where the provider may still hold or have taken the customer's money.
_HOLDS_SOMETHING = ("AUTHORIZING", "AUTHORIZED", "CAPTURING", "CAPTURED", "CAPTURE_FAILED")


class PaymentCalls(Protocol):
    """The card provider (structurally workflows.ports.PaymentProvider: adapters import only
    the domain)."""

    async def authorize(self, *, token: str, amount: Money, idempotency_key: str) -> str: ...

    async def capture(self, *, authorization_id: str, idempotency_key: str) -> str: ...

    async def void(self, *, authorization_id: str, idempotency_key: str) -> None: ...

    async def refund(self, *, capture_id: str, idempotency_key: str) -> str: ...


class StepContentionError(BackendUnavailableError):
    pass


def payment_key(order_id: str, step: str) -> str:
    """The provider's idempotency key of one step of one order: a retry, a redelivery or a
    replay by a compensation gets the first outcome again."""
    return f"{order_id}:{step}"


@dataclass(frozen=True, slots=True)
class _Saga:
    checkout_input: dict[str, Any] | None
    aborted: bool
    abort_reason: str | None
    cancelling: bool


@dataclass(frozen=True, slots=True)
class _Payment:
    status: str
    amount: Money
    authorization_id: str | None
    capture_id: str | None


@dataclass(frozen=True, slots=True)
class StalledSagaRow:
    order_id: str
    saga: str
    execution_input: str


def _canonical(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class PostgresSagaStore:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        dsn: str,
        payments: PaymentCalls,
        *,
        checkpoint: Checkpoint | None = None,
        fence: EpochFence | None = None,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._payments = payments
        self._checkpoint_hook = checkpoint
        # The region and epoch the worker runs under: every transaction first checks that
        # the database names the same (a demoted primary's steps write nothing).
        self._fence = fence

    # -- forward steps ----------------------------------------------------------------------

    async def create_order(
        self, order_id: str, placed_in: str, command: Checkout, execution_input: Mapping[str, Any]
    ) -> StepResult:
        step = Step.CREATE_ORDER
        async with self._step(order_id, step, forward=True) as (conn, _, recorded):
            if recorded is not None:
                return recorded
            # Unknown customer or product, mixed currencies: NotFoundError / BadRequestError.
            order = await repositories.insert_order(
                conn,
                order_id,
                command.customer_id,
                [(line.product_id, line.quantity) for line in command.lines],
                OrderStatus.PENDING,
                placed_in,
                command.idempotency_key,
            )
            await conn.execute(
                "UPDATE sagas SET checkout_input = $2 WHERE order_id = $1",
                order_id,
                dict(execution_input),
            )
            total = {"amount": order.total.amount, "currency": order.total.currency}
            return await self._record(conn, order_id, step, {"status": "PENDING", "total": total})

    async def reserve_inventory(self, order_id: str) -> StepResult:
        step = Step.RESERVE_INVENTORY
        async with self._step(order_id, step, forward=True) as (conn, _, recorded):
            if recorded is not None:
                return recorded
            await _expect_status(conn, order_id, step, OrderStatus.PENDING)
            lines = await _quantities(conn, order_id)
            stock = await _lock_stock(conn, lines)
            short = [pid for pid, quantity in lines.items() if stock.get(pid, 0) < quantity]
            if short:
                raise InventoryInsufficientError(
                    f"not enough stock of {', '.join(short)} for order {order_id}"
                )
            await _move_stock(conn, lines, source="available", target="reserved")
            await _set_status(conn, order_id, OrderStatus.RESERVED)
            reserved = [{"productId": pid, "quantity": q} for pid, q in lines.items()]
            return await self._record(conn, order_id, step, {"reserved": reserved})

    async def authorize_payment(self, order_id: str) -> StepResult:
        step = Step.AUTHORIZE_PAYMENT
        async with self._step(order_id, step, forward=True, label=":begin") as (
            conn,
            saga,
            recorded,
        ):
            if recorded is not None:
                return recorded
            total = await _expect_status(conn, order_id, step, OrderStatus.RESERVED)
            payment = await _payment(conn, order_id)
            if payment is None:
                await conn.execute(
                    "INSERT INTO payments (id, order_id, status, amount, currency)"
                    " VALUES ($1, $2, 'AUTHORIZING', $3, $4)",
                    f"pay-{order_id}",
                    order_id,
                    total.amount,
                    total.currency,
                )
            elif payment.status not in ("AUTHORIZING", "DECLINED"):
                # An earlier attempt's outcome is unknown, or was a refusal: the key replays
                # it, and a redelivered task gets the answer the first one got.
                raise SagaStateError(f"{step}: payment of {order_id} is {payment.status}")
            token = _payment_token(saga, order_id)
        try:
            authorization_id = await self._payments.authorize(
                token=token, amount=total, idempotency_key=payment_key(order_id, step)
            )
        except _REFUSED:
            await self._set_payment(order_id, "DECLINED", when=("AUTHORIZING",))
            raise
        await self._checkpoint(f"{step}:provider")
        async with self._step(order_id, step, forward=False) as (conn, saga, recorded):
            if recorded is not None:
                return recorded
            # The hold exists whatever happens next: record it before anything else.
            await _update_payment(
                conn,
                order_id,
                "AUTHORIZED",
                when=("AUTHORIZING", "ABANDONED"),
                authorization_id=authorization_id,
            )
            if not saga.aborted:
                await _set_status(conn, order_id, OrderStatus.AUTHORIZED)
                result = {"authorizationId": authorization_id}
                return await self._record(conn, order_id, step, result)
            # VoidAuthorization ran while the provider answered us, and gave up learning the
            # outcome (ABANDONED): the hold we just learned of is ours to release.
            payment = await _payment(conn, order_id)
            voided = await _recorded(conn, order_id, Step.VOID_AUTHORIZATION) is not None
            late = voided and payment is not None and payment.status == "AUTHORIZED"
        if late:
            await self._void(order_id, authorization_id)
        raise OrderAbortedError(order_id, step)

    async def capture_payment(self, order_id: str) -> StepResult:
        step = Step.CAPTURE_PAYMENT
        async with self._step(order_id, step, forward=True, label=":begin") as (
            conn,
            _,
            recorded,
        ):
            if recorded is not None:
                return recorded
            await _expect_status(conn, order_id, step, OrderStatus.AUTHORIZED)
            payment = await _payment(conn, order_id)
            if payment is None or payment.status not in (
                "AUTHORIZED",
                "CAPTURING",
                "CAPTURE_FAILED",
            ):
                status = payment.status if payment else "missing"
                raise SagaStateError(f"{step}: payment of {order_id} is {status}")
            authorization_id = _required(payment.authorization_id, order_id)
            await _update_payment(conn, order_id, "CAPTURING", when=("AUTHORIZED",))
        try:
            capture_id = await self._payments.capture(
                authorization_id=authorization_id, idempotency_key=payment_key(order_id, step)
            )
        except _REFUSED:
            await self._set_payment(order_id, "CAPTURE_FAILED", when=("CAPTURING",))
            raise
        await self._checkpoint(f"{step}:provider")
        async with self._step(order_id, step, forward=False) as (conn, saga, recorded):
            if recorded is not None:
                return recorded
            await _update_payment(
                conn, order_id, "CAPTURED", when=("CAPTURING",), capture_id=capture_id
            )
            if not saga.aborted:
                lines = await _quantities(conn, order_id)
                await _lock_stock(conn, lines)
                await _move_stock(conn, lines, source="reserved", target="sold")
                await _set_status(conn, order_id, OrderStatus.CAPTURED)
                return await self._record(conn, order_id, step, {"captureId": capture_id})
        # Compensating meanwhile: RefundPayment saw CAPTURING (written under the lock before
        # the call) and refunds by replaying the capture, or it will; it never gives up, so
        # unlike a late authorization nothing is left for this step to undo.
        raise OrderAbortedError(order_id, step)

    async def update_customer(self, order_id: str) -> StepResult:
        step = Step.UPDATE_CUSTOMER
        async with self._step(order_id, step, forward=True) as (conn, _, recorded):
            if recorded is not None:
                return recorded
            total = await _expect_status(conn, order_id, step, OrderStatus.CAPTURED)
            points = loyalty_points_for(total.amount)
            await _add_points(conn, order_id, points)
            return await self._record(conn, order_id, step, {"points": points})

    async def confirm_order(self, order_id: str) -> StepResult:
        step = Step.CONFIRM_ORDER
        async with self._step(order_id, step, forward=True) as (conn, _, recorded):
            if recorded is not None:
                return recorded
            await _expect_status(conn, order_id, step, OrderStatus.CAPTURED)
            await _set_status(conn, order_id, OrderStatus.CONFIRMED)
            return await self._record(conn, order_id, step, {"status": "CONFIRMED"}, done=True)

    # -- compensations (the checkout's, and the cancellation's steps) -----------------------

    async def revert_loyalty(self, order_id: str, reason: str) -> StepResult:
        step = Step.REVERT_LOYALTY
        async with self._compensation(order_id, step, reason) as (conn, _, done):
            if done is not None:
                return done
            granted = await _recorded(conn, order_id, Step.UPDATE_CUSTOMER)
            points = int(granted["points"]) if granted else 0
            if points:
                await _add_points(conn, order_id, -points)
            return await self._record(conn, order_id, step, {"reverted": points})

    async def refund_payment(self, order_id: str, reason: str) -> StepResult:
        step = Step.REFUND_PAYMENT
        async with self._compensation(order_id, step, reason, label=":begin") as (
            conn,
            _,
            done,
        ):
            if done is not None:
                return done
            payment = await _payment(conn, order_id)
            if payment is None or payment.status not in ("CAPTURING", "CAPTURED"):
                return await self._record(conn, order_id, step, {"refunded": False})
        capture_id = payment.capture_id
        if payment.status == "CAPTURING":
            # Did the capture happen? Replaying it with its key gives the provider's answer.
            authorization_id = _required(payment.authorization_id, order_id)
            try:
                capture_id = await self._payments.capture(
                    authorization_id=authorization_id,
                    idempotency_key=payment_key(order_id, Step.CAPTURE_PAYMENT),
                )
            except _REFUSED:
                await self._set_payment(order_id, "CAPTURE_FAILED", when=("CAPTURING",))
                return await self._finish(order_id, step, {"refunded": False})
            await self._set_payment(
                order_id, "CAPTURED", when=("CAPTURING",), capture_id=capture_id
            )
        refund_id = await self._refund_call(order_id, _required(capture_id, order_id))
        async with self._step(order_id, step, forward=False) as (conn, _, recorded):
            if recorded is not None:
                return recorded
            await _update_payment(
                conn, order_id, "REFUNDED", when=("CAPTURING", "CAPTURED"), refund_id=refund_id
            )
            return await self._record(conn, order_id, step, {"refunded": True})

    async def void_authorization(self, order_id: str, reason: str) -> StepResult:
        step = Step.VOID_AUTHORIZATION
        async with self._compensation(order_id, step, reason, label=":begin") as (
            conn,
            saga,
            done,
        ):
            if done is not None:
                return done
            payment = await _payment(conn, order_id)
            status = payment.status if payment else None
            if status in ("CAPTURING", "CAPTURED"):
                # Money may have been taken: RefundPayment must settle that first.
                raise SagaStateError(f"{step}: the payment of {order_id} is {status}; refund first")
            if payment is None or status not in ("AUTHORIZING", "AUTHORIZED", "CAPTURE_FAILED"):
                return await self._record(conn, order_id, step, {"voided": False})
            token = _payment_token(saga, order_id) if status == "AUTHORIZING" else ""
        authorization_id = payment.authorization_id
        if payment.status == "AUTHORIZING":
            # Is there a hold? Replaying the authorization with its key gives the answer.
            try:
                authorization_id = await self._payments.authorize(
                    token=token,
                    amount=payment.amount,
                    idempotency_key=payment_key(order_id, Step.AUTHORIZE_PAYMENT),
                )
            except _REFUSED:
                await self._set_payment(order_id, "DECLINED", when=("AUTHORIZING",))
                return await self._finish(order_id, step, {"voided": False})
            except (PaymentTimeoutError, PaymentProviderUnavailableError) as exc:
                # The provider still does not say whether it holds anything. A hold lapses by
                # itself (days, at most) and takes no money, so give up rather than keep the
                # saga, and the customer's order, waiting for a provider that never answers.
                log.warning("%s: authorization of %s abandoned: %s", step, order_id, exc)
                await self._set_payment(order_id, "ABANDONED", when=("AUTHORIZING",))
                return await self._finish(order_id, step, {"voided": False, "abandoned": True})
            await self._set_payment(
                order_id, "AUTHORIZED", when=("AUTHORIZING",), authorization_id=authorization_id
            )
        await self._void_call(order_id, _required(authorization_id, order_id))
        async with self._step(order_id, step, forward=False) as (conn, _, recorded):
            if recorded is not None:
                return recorded
            await _update_payment(conn, order_id, "VOIDED", when=("AUTHORIZED", "CAPTURE_FAILED"))
            return await self._record(conn, order_id, step, {"voided": True})

    async def release_inventory(self, order_id: str, reason: str) -> StepResult:
        step = Step.RELEASE_INVENTORY
        async with self._compensation(order_id, step, reason) as (conn, _, done):
            if done is not None:
                return done
            if await _recorded(conn, order_id, Step.RESERVE_INVENTORY) is None:
                return await self._record(conn, order_id, step, {"released": []})
            # The stock is sold once the capture was recorded, reserved until then.
            sold = await _recorded(conn, order_id, Step.CAPTURE_PAYMENT) is not None
            source = "sold" if sold else "reserved"
            lines = await _quantities(conn, order_id)
            await _lock_stock(conn, lines)
            await _move_stock(conn, lines, source=source, target="available")
            released = [{"productId": pid, "quantity": q} for pid, q in lines.items()]
            return await self._record(conn, order_id, step, {"released": released, "from": source})

    async def mark_order_failed(
        self, order_id: str, reason: str, execution_input: Mapping[str, Any]
    ) -> StepResult:
        step = Step.MARK_ORDER_FAILED
        async with self._compensation(order_id, step, reason) as (conn, saga, done):
            if done is not None:
                return done
            # The first compensation's reason stands: a re-run aborted with Order.Aborted
            # must not replace OUT_OF_STOCK with INTERNAL_ERROR.
            reason = saga.abort_reason or reason
            status = await _order_status(conn, order_id)
            if status in (OrderStatus.CONFIRMED, OrderStatus.CANCELLED):
                # Only a cancellation ends a confirmed order, and never as FAILED: this is a
                # late failure answer of a checkout that did finish.
                return {"skipped": f"the order is {status.value}"}
            if status is None:
                await _insert_failed_shell(conn, order_id, reason, execution_input)
            else:
                await _require_compensated(conn, order_id, step)
                if status is not OrderStatus.FAILED:
                    await _set_status(conn, order_id, OrderStatus.FAILED, reason=reason)
            result = {"status": "FAILED", "failureReason": reason}
            return await self._record(conn, order_id, step, result, done=True)

    # -- cancellation -----------------------------------------------------------------------

    async def begin_cancellation(
        self, order_id: str, execution_input: Mapping[str, Any]
    ) -> StepResult:
        step = Step.BEGIN_CANCELLATION
        async with self._step(order_id, step, forward=False) as (conn, _, recorded):
            if recorded is not None:
                return recorded
            status = await _order_status(conn, order_id)
            if status is not OrderStatus.CONFIRMED:
                raise OrderNotCancellableError(
                    f"order {order_id} is {status.value if status else 'unknown'}: "
                    "only a CONFIRMED order can be cancelled"
                )
            # Aborted too: no late forward step of its checkout may run from now on.
            await conn.execute(
                """
                UPDATE sagas
                   SET cancel_input = $2, done_at = NULL,
                       aborted_at = COALESCE(aborted_at, now()),
                       abort_reason = COALESCE(abort_reason, $3)
                 WHERE order_id = $1
                """,
                order_id,
                dict(execution_input),
                FailureReason.CANCELLED_BY_CUSTOMER,
            )
            return await self._record(conn, order_id, step, {"status": "CONFIRMED"})

    async def mark_order_cancelled(self, order_id: str) -> StepResult:
        step = Step.MARK_ORDER_CANCELLED
        async with self._step(order_id, step, forward=False) as (conn, saga, recorded):
            if recorded is not None:
                return recorded
            if not saga.cancelling:
                raise SagaStateError(f"{step}: order {order_id} has no cancellation")
            await _expect_status(conn, order_id, step, OrderStatus.CONFIRMED)
            await _require_compensated(conn, order_id, step)
            reason = FailureReason.CANCELLED_BY_CUSTOMER
            await _set_status(conn, order_id, OrderStatus.CANCELLED, reason=reason)
            result = {"status": "CANCELLED"}
            return await self._record(conn, order_id, step, result, done=True)

    # -- the reconciler's side (workflows.ports.SagaLedger) --------------------------------

    async def stalled(self, idle_for: timedelta, limit: int) -> list[StalledSagaRow]:
        async with self._transaction() as conn:
            rows = await conn.fetch(
                """
                SELECT order_id, checkout_input, cancel_input
                  FROM sagas
                 WHERE done_at IS NULL
                   AND updated_at < now() - $1::interval
                   AND (checkout_input IS NOT NULL OR cancel_input IS NOT NULL)
                 ORDER BY updated_at
                 LIMIT $2
                """,
                idle_for,
                limit,
            )
        # A cancellation is the later saga of an order: it is the one to finish.
        return [
            StalledSagaRow(row["order_id"], CANCEL, _canonical(row["cancel_input"]))
            if row["cancel_input"] is not None
            else StalledSagaRow(row["order_id"], CHECKOUT, _canonical(row["checkout_input"]))
            for row in rows
        ]

    async def claim_rerun(self, order_id: str, idle_for: timedelta) -> int | None:
        async with self._transaction() as conn:
            # Compare and set: of two reconcilers, or a reconciler and a step, one wins.
            attempt = await conn.fetchval(
                """
                UPDATE sagas SET attempts = attempts + 1, updated_at = now()
                 WHERE order_id = $1 AND done_at IS NULL
                   AND updated_at < now() - $2::interval
                RETURNING attempts
                """,
                order_id,
                idle_for,
            )
        return int(attempt) if attempt is not None else None

    # -- transactions -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
                if self._fence is not None:
                    await self._fence.check(conn)
                yield conn
        except _LOST as exc:
            raise RelationalStoreUnavailableError(self._dsn, exc) from exc
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            raise StepContentionError(f"the step lost a race in PostgreSQL ({exc}); retry") from exc

    @contextlib.asynccontextmanager
    async def _step(
        self, order_id: str, step: str, *, forward: bool, label: str = ""
    ) -> AsyncIterator[tuple[Connection, _Saga, StepResult | None]]:
        """A transaction holding the saga's lock, with the step's recorded result if any.
        Forward steps refuse an aborted saga before anything else, even a recorded result."""
        async with self._transaction() as conn:
            saga = await _lock_saga(conn, order_id)
            if forward and saga.aborted:
                raise OrderAbortedError(order_id, step)
            yield conn, saga, await _recorded(conn, order_id, step)
            await self._checkpoint(step + label)

    @contextlib.asynccontextmanager
    async def _compensation(
        self, order_id: str, step: str, reason: str, *, label: str = ""
    ) -> AsyncIterator[tuple[Connection, _Saga, StepResult | None]]:
        """A compensation's first transaction: aborts the saga (for good: it commits even if
        the compensation fails later) unless the order was confirmed and is not being
        cancelled, in which case there is nothing to undo and `done` says so."""
        async with self._step(order_id, step, forward=False, label=label) as (
            conn,
            saga,
            recorded,
        ):
            if recorded is not None:
                yield conn, saga, recorded
                return
            status = await _order_status(conn, order_id)
            if not saga.cancelling and status in (OrderStatus.CONFIRMED, OrderStatus.CANCELLED):
                # A late failure answer of a confirmed checkout: nothing to undo, and nothing
                # recorded, so a later cancellation still finds this step to do.
                yield conn, saga, {"skipped": f"the order is {status.value}"}
                return
            if not saga.aborted:
                await conn.execute(
                    "UPDATE sagas SET aborted_at = now(), abort_reason = $2, updated_at = now()"
                    " WHERE order_id = $1",
                    order_id,
                    reason,
                )
                saga = _Saga(saga.checkout_input, True, reason, saga.cancelling)
            yield conn, saga, None

    async def _record(
        self,
        conn: Connection,
        order_id: str,
        step: str,
        result: StepResult,
        *,
        done: bool = False,
    ) -> StepResult:
        await conn.execute(
            "INSERT INTO saga_steps (order_id, step, result) VALUES ($1, $2, $3)",
            order_id,
            step,
            result,
        )
        await conn.execute(
            "UPDATE sagas SET updated_at = now(),"
            " done_at = CASE WHEN $2 THEN now() ELSE done_at END WHERE order_id = $1",
            order_id,
            done,
        )
        return result

    async def _finish(self, order_id: str, step: str, result: StepResult) -> StepResult:
        """Record a compensation that learned from the provider there is nothing to undo."""
        async with self._step(order_id, step, forward=False) as (conn, _, recorded):
            if recorded is not None:
                return recorded
            return await self._record(conn, order_id, step, result)

    async def _set_payment(
        self, order_id: str, status: str, *, when: tuple[str, ...], **ids: str
    ) -> None:
        async with self._transaction() as conn:
            await _lock_saga(conn, order_id)
            await _update_payment(conn, order_id, status, when=when, **ids)

    async def _checkpoint(self, label: str) -> None:
        if self._checkpoint_hook is not None:
            await self._checkpoint_hook(label)

    # -- provider calls ---------------------------------------------------------------------

    async def _void_call(self, order_id: str, authorization_id: str) -> None:
        step = Step.VOID_AUTHORIZATION
        await self._payments.void(
            authorization_id=authorization_id, idempotency_key=payment_key(order_id, step)
        )
        await self._checkpoint(f"{step}:provider")

    async def _refund_call(self, order_id: str, capture_id: str) -> str:
        step = Step.REFUND_PAYMENT
        refund_id = await self._payments.refund(
            capture_id=capture_id, idempotency_key=payment_key(order_id, step)
        )
        await self._checkpoint(f"{step}:provider")
        return refund_id

    async def _void(self, order_id: str, authorization_id: str) -> None:
        await self._void_call(order_id, authorization_id)
        await self._set_payment(order_id, "VOIDED", when=("AUTHORIZED",))


# -- queries and changes inside a step's transaction ----------------------------------------


async def _lock_saga(conn: Connection, order_id: str) -> _Saga:
    # Created on first touch: a compensation may be the first to touch an order.
    await conn.execute("INSERT INTO sagas (order_id) VALUES ($1) ON CONFLICT DO NOTHING", order_id)
    row = await conn.fetchrow(
        "SELECT checkout_input, cancel_input, aborted_at, abort_reason"
        " FROM sagas WHERE order_id = $1 FOR UPDATE",
        order_id,
    )
    assert row is not None  # inserted above, or already there
    return _Saga(
        checkout_input=row["checkout_input"],
        aborted=row["aborted_at"] is not None,
        abort_reason=row["abort_reason"],
        cancelling=row["cancel_input"] is not None,
    )


async def _recorded(conn: Connection, order_id: str, step: str) -> StepResult | None:
    result: StepResult | None = await conn.fetchval(
        "SELECT result FROM saga_steps WHERE order_id = $1 AND step = $2", order_id, step
    )
    return result


async def _order_status(conn: Connection, order_id: str) -> OrderStatus | None:
    status = await conn.fetchval("SELECT status FROM orders WHERE id = $1", order_id)
    return OrderStatus(status) if status is not None else None


async def _expect_status(
    conn: Connection, order_id: str, step: str, expected: OrderStatus
) -> Money:
    """The order's total, after checking the previous step left it in `expected`."""
    row = await conn.fetchrow(
        "SELECT status, total_amount, currency FROM orders WHERE id = $1", order_id
    )
    if row is None or row["status"] != expected.value:
        found = row["status"] if row else "missing"
        raise SagaStateError(f"{step}: order {order_id} is {found}, expected {expected.value}")
    return Money(amount=row["total_amount"], currency=row["currency"])


async def _set_status(
    conn: Connection, order_id: str, status: OrderStatus, *, reason: str | None = None
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


async def _quantities(conn: Connection, order_id: str) -> dict[str, int]:
    """Quantity per product of an order, in product order (the stock locking order)."""
    rows = await conn.fetch(
        "SELECT product_id, sum(quantity)::integer AS quantity FROM order_lines"
        " WHERE order_id = $1 GROUP BY product_id ORDER BY product_id",
        order_id,
    )
    return {row["product_id"]: row["quantity"] for row in rows}


async def _lock_stock(conn: Connection, lines: Mapping[str, int]) -> dict[str, int]:
    """Lock the stock rows of `lines` in product order; returns what is available."""
    rows = await conn.fetch(
        "SELECT product_id, available FROM inventory WHERE product_id = ANY($1::text[])"
        " ORDER BY product_id FOR UPDATE",
        list(lines),
    )
    return {row["product_id"]: row["available"] for row in rows}


_STOCK_COLUMNS = frozenset({"available", "reserved", "sold"})


async def _move_stock(
    conn: Connection, lines: Mapping[str, int], *, source: str, target: str
) -> None:
    """Move each line's quantity from one stock column to another (locked by the caller),
    then append each product's new snapshot (its `available` is part of it)."""
    assert {source, target} <= _STOCK_COLUMNS  # column names are not parameters: whitelist
    await conn.execute(
        f"""
        UPDATE inventory i
           SET {source} = i.{source} - l.quantity, {target} = i.{target} + l.quantity
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


async def _payment(conn: Connection, order_id: str) -> _Payment | None:
    row = await conn.fetchrow(
        "SELECT status, amount, currency, authorization_id, capture_id"
        " FROM payments WHERE order_id = $1",
        order_id,
    )
    if row is None:
        return None
    return _Payment(
        status=row["status"],
        amount=Money(amount=row["amount"], currency=row["currency"]),
        authorization_id=row["authorization_id"],
        capture_id=row["capture_id"],
    )


async def _update_payment(
    conn: Connection,
    order_id: str,
    status: str,
    *,
    when: Sequence[str],
    authorization_id: str | None = None,
    capture_id: str | None = None,
    refund_id: str | None = None,
) -> None:
    """Move the payment to `status` if it is in one of `when` (else leave it: another run
    already moved it on), keeping the ids it had unless new ones are given."""
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
        status,
        list(when),
        authorization_id,
        capture_id,
        refund_id,
    )


async def _require_compensated(conn: Connection, order_id: str, step: str) -> None:
    """A FAILED or CANCELLED order keeps no money, no stock and no points: refuse to mark
    one that still does (the reconciler then re-runs the whole compensation chain)."""
    payment = await _payment(conn, order_id)
    if payment is not None and payment.status in _HOLDS_SOMETHING:
        raise SagaStateError(f"{step}: the payment of {order_id} is still {payment.status}")
    steps = {
        row["step"]
        for row in await conn.fetch("SELECT step FROM saga_steps WHERE order_id = $1", order_id)
    }
    for done, undone in (
        (Step.RESERVE_INVENTORY, Step.RELEASE_INVENTORY),
        (Step.UPDATE_CUSTOMER, Step.REVERT_LOYALTY),
    ):
        if done in steps and undone not in steps:
            raise SagaStateError(f"{step}: {done} of {order_id} was not undone by {undone}")


async def _insert_failed_shell(
    conn: Connection, order_id: str, reason: str, execution_input: Mapping[str, Any]
) -> None:
    """CreateOrder refused the order, yet the client was told it is PENDING: record it as
    FAILED (no lines, nothing charged) so the client sees how it ended. Without a known
    customer there is nowhere to put it (the client's customer id was wrong to begin with)."""
    request = execution_input.get("request")
    request = request if isinstance(request, Mapping) else {}
    customer_id, key = request.get("customerId"), request.get("idempotencyKey")
    placed_in = execution_input.get("placedIn")
    if not (isinstance(customer_id, str) and isinstance(key, str) and isinstance(placed_in, str)):
        return
    inserted = await conn.fetchval(
        """
        INSERT INTO orders (id, customer_id, status, currency, total_amount, failure_reason,
                            placed_in, idempotency_key)
        SELECT $1, c.id, 'FAILED', 'XXX', 0, $3, $4, $5 FROM customers c WHERE c.id = $2
        ON CONFLICT DO NOTHING
        RETURNING id
        """,
        order_id,
        customer_id,
        reason,
        placed_in,
        key,
    )
    if inserted is None:
        return
    await conn.execute(
        "INSERT INTO order_status_history (order_id, seq, status, at, reason)"
        " VALUES ($1, 1, 'FAILED', now(), $2)",
        order_id,
        reason,
    )
    await repositories.emit_order(conn, order_id)


def _payment_token(saga: _Saga, order_id: str) -> str:
    request = (saga.checkout_input or {}).get("request") or {}
    token = request.get("paymentToken")
    if not isinstance(token, str):
        raise SagaStateError(f"the saga of order {order_id} has no payment token")
    return token


def _required(identifier: str | None, order_id: str) -> str:
    if identifier is None:
        raise SagaStateError(f"the payment of order {order_id} lacks a provider id")
    return identifier
