"""The sagas' activities: one handler per step and per compensation of workflows/*.asl.json.

A handler receives the execution's state as the task message carries it (`input`: the
execution input plus `results` of earlier steps and, in a compensation, the caught `error`),
does its step through the SagaStore (one transaction, idempotent per (order, step)), and
returns the step's result, which the state machine keeps under `$.results.<Step>`.

A step that is one transaction is a rule of the domain (domain.saga_forward,
domain.saga_compensations) that its handler hands the store with the task's order and, for a
compensation, the failure reason; the payment steps and CreateOrder have a store method each.
So a new step is its ASL state, its rule (tested in memory) and its handler here.

Failures leave here as StepFailure(error, cause): `error` is the name the ASL catches, as
domain.saga_errors.step_error_name gives it for the domain's named errors (Inventory.*,
Order.*, Payment.*, Backend.Unavailable); anything else is a bug, Step.InternalError (caught
by States.ALL).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from domain import saga_compensations as compensations
from domain import saga_forward as forward
from domain.commands import Checkout, CheckoutLine
from domain.errors import BadRequestError
from domain.saga import Step
from domain.saga_errors import failure_reason_for, step_error_name
from workflows.ports import SagaStore, StepResult

log = logging.getLogger(__name__)

# Not in domain.saga.StepError: an unexpected exception in a step. The ASL's States.ALL
# catchers send it to the compensations, with failure reason INTERNAL_ERROR.
INTERNAL_ERROR: Final = "Step.InternalError"

# Step Functions keeps at most 32768 characters of a failure's cause.
_MAX_CAUSE = 32768

Handler = Callable[[Mapping[str, Any]], Awaitable[StepResult]]


class StepFailure(Exception):
    """The step's answer is SendTaskFailure(error, cause)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause[:_MAX_CAUSE]


def step_error_for(error: Exception) -> str:
    return step_error_name(error) or INTERNAL_ERROR


def _order_id(state: Mapping[str, Any]) -> str:
    order_id = state.get("orderId")
    if not isinstance(order_id, str) or not order_id:
        raise BadRequestError("the task's input has no orderId")
    return order_id


def _checkout_input(state: Mapping[str, Any]) -> dict[str, Any]:
    """The execution input of a checkout, without what the steps added to the state."""
    return {key: state[key] for key in ("orderId", "placedIn", "request") if key in state}


def _checkout_command(state: Mapping[str, Any]) -> Checkout:
    """The request as domain.saga.checkout_request wrote it, validated again: the resolver's
    checks ran against the projections, this one guards the relational model."""
    request = state.get("request")
    try:
        assert isinstance(request, Mapping)
        return Checkout(
            customer_id=str(request["customerId"]),
            lines=tuple(
                CheckoutLine(product_id=str(line["productId"]), quantity=int(line["quantity"]))
                for line in request["lines"]
            ),
            payment_token=str(request["paymentToken"]),
            idempotency_key=str(request["idempotencyKey"]),
        )
    except (AssertionError, KeyError, TypeError, ValueError) as exc:
        raise BadRequestError(f"the checkout request is malformed: {exc!r}") from None


def _reason(state: Mapping[str, Any]) -> str:
    error = state.get("error")
    return failure_reason_for(error.get("Error") if isinstance(error, Mapping) else None)


class Activities:
    """The handlers of both sagas over one store, one per step. `run` is what the worker
    calls."""

    def __init__(self, store: SagaStore) -> None:
        self._store = store
        self.handlers: dict[str, Handler] = {
            Step.CREATE_ORDER: self.create_order,
            Step.RESERVE_INVENTORY: self.reserve_inventory,
            Step.AUTHORIZE_PAYMENT: self.authorize_payment,
            Step.CAPTURE_PAYMENT: self.capture_payment,
            Step.UPDATE_CUSTOMER: self.update_customer,
            Step.CONFIRM_ORDER: self.confirm_order,
            Step.REVERT_LOYALTY: self.revert_loyalty,
            Step.REFUND_PAYMENT: self.refund_payment,
            Step.VOID_AUTHORIZATION: self.void_authorization,
            Step.RELEASE_INVENTORY: self.release_inventory,
            Step.MARK_ORDER_FAILED: self.mark_order_failed,
            Step.BEGIN_CANCELLATION: self.begin_cancellation,
            Step.MARK_ORDER_CANCELLED: self.mark_order_cancelled,
        }

    # -- the checkout's forward steps -------------------------------------------------------

    async def create_order(self, state: Mapping[str, Any]) -> StepResult:
        order_id = _order_id(state)
        placed_in = state.get("placedIn")
        if not isinstance(placed_in, str):
            raise BadRequestError("the checkout has no placedIn region")
        return await self._store.create_order(
            order_id, placed_in, _checkout_command(state), _checkout_input(state)
        )

    async def reserve_inventory(self, state: Mapping[str, Any]) -> StepResult:
        return await self._store.run_step(_order_id(state), forward.RESERVE_INVENTORY)

    async def authorize_payment(self, state: Mapping[str, Any]) -> StepResult:
        return await self._store.authorize_payment(_order_id(state))

    async def capture_payment(self, state: Mapping[str, Any]) -> StepResult:
        return await self._store.capture_payment(_order_id(state))

    async def update_customer(self, state: Mapping[str, Any]) -> StepResult:
        return await self._store.run_step(_order_id(state), forward.UPDATE_CUSTOMER)

    async def confirm_order(self, state: Mapping[str, Any]) -> StepResult:
        return await self._store.run_step(_order_id(state), forward.CONFIRM_ORDER)

    # -- compensations ----------------------------------------------------------------------

    async def revert_loyalty(self, state: Mapping[str, Any]) -> StepResult:
        rule = compensations.revert_loyalty(_reason(state))
        return await self._store.run_step(_order_id(state), rule)

    async def refund_payment(self, state: Mapping[str, Any]) -> StepResult:
        return await self._store.refund_payment(_order_id(state), _reason(state))

    async def void_authorization(self, state: Mapping[str, Any]) -> StepResult:
        return await self._store.void_authorization(_order_id(state), _reason(state))

    async def release_inventory(self, state: Mapping[str, Any]) -> StepResult:
        rule = compensations.release_inventory(_reason(state))
        return await self._store.run_step(_order_id(state), rule)

    async def mark_order_failed(self, state: Mapping[str, Any]) -> StepResult:
        rule = compensations.mark_order_failed(_reason(state), _checkout_input(state))
        return await self._store.run_step(_order_id(state), rule)

    # -- the cancellation's own steps -------------------------------------------------------

    async def begin_cancellation(self, state: Mapping[str, Any]) -> StepResult:
        execution_input = {
            "orderId": state.get("orderId"),
            "idempotencyKey": state.get("idempotencyKey"),
        }
        rule = compensations.begin_cancellation(execution_input)
        return await self._store.run_step(_order_id(state), rule)

    async def mark_order_cancelled(self, state: Mapping[str, Any]) -> StepResult:
        return await self._store.run_step(_order_id(state), compensations.MARK_ORDER_CANCELLED)

    async def run(self, step: str, state: Mapping[str, Any]) -> StepResult:
        """Run `step` on the execution state; raises StepFailure with the error to catch."""
        handler = self.handlers.get(step)
        if handler is None:
            raise StepFailure(INTERNAL_ERROR, f"no activity is named {step!r}")
        try:
            return await handler(state)
        except Exception as exc:
            error = step_error_for(exc)
            if error == INTERNAL_ERROR:
                log.exception("saga step %s of %s failed unexpectedly", step, state.get("orderId"))
            else:
                log.info("saga step %s of %s: %s: %s", step, state.get("orderId"), error, exc)
            raise StepFailure(error, str(exc) or type(exc).__name__) from exc
