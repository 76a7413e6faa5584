"""The sagas' activities: one handler per step and per compensation of workflows/*.asl.json.

A handler receives the execution's state as the task message carries it (`input`: the
execution input plus `results` of earlier steps and, in a compensation, the caught `error`),
does its step through the SagaStore (one transaction, idempotent per (order, step)), and
returns the step's result, which the state machine keeps under `$.results.<Step>`.

Failures leave here as StepFailure(error, cause): `error` is the name the ASL catches, as
domain.saga_errors.step_error_name gives it for the domain's named errors (Inventory.*,
Order.*, Payment.*, Backend.Unavailable); anything else is a bug, Step.InternalError (caught
by States.ALL).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

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
    """The handlers of both sagas over one store. `run` is what the worker calls."""

    def __init__(self, store: SagaStore) -> None:
        self._store = store
        self.handlers: dict[str, Handler] = {
            Step.CREATE_ORDER: self.create_order,
            Step.RESERVE_INVENTORY: lambda s: store.reserve_inventory(_order_id(s)),
            Step.AUTHORIZE_PAYMENT: lambda s: store.authorize_payment(_order_id(s)),
            Step.CAPTURE_PAYMENT: lambda s: store.capture_payment(_order_id(s)),
            Step.UPDATE_CUSTOMER: lambda s: store.update_customer(_order_id(s)),
            Step.CONFIRM_ORDER: lambda s: store.confirm_order(_order_id(s)),
            Step.REVERT_LOYALTY: lambda s: store.revert_loyalty(_order_id(s), _reason(s)),
            Step.REFUND_PAYMENT: lambda s: store.refund_payment(_order_id(s), _reason(s)),
            Step.VOID_AUTHORIZATION: lambda s: store.void_authorization(_order_id(s), _reason(s)),
            Step.RELEASE_INVENTORY: lambda s: store.release_inventory(_order_id(s), _reason(s)),
            Step.MARK_ORDER_FAILED: lambda s: store.mark_order_failed(
                _order_id(s), _reason(s), _checkout_input(s)
            ),
            Step.BEGIN_CANCELLATION: lambda s: store.begin_cancellation(
                _order_id(s),
                {"orderId": s.get("orderId"), "idempotencyKey": s.get("idempotencyKey")},
            ),
            Step.MARK_ORDER_CANCELLED: lambda s: store.mark_order_cancelled(_order_id(s)),
        }

    async def create_order(self, state: Mapping[str, Any]) -> StepResult:
        order_id = _order_id(state)
        placed_in = state.get("placedIn")
        if not isinstance(placed_in, str):
            raise BadRequestError("the checkout has no placedIn region")
        return await self._store.create_order(
            order_id, placed_in, _checkout_command(state), _checkout_input(state)
        )

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
