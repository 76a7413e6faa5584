"""The sagas' named errors, and the name each failure leaves a step with: the `error` of
SendTaskFailure, which the ASL catches by name (domain.saga.StepError).

    HemisphereError
    ├── SagaRefusalError                 a refusal the ASL catches by name
    │   ├── InventoryInsufficientError   Inventory.Insufficient
    │   └── OrderAbortedError            Order.Aborted
    └── SagaStateError                   out of order, or not yet undone: caught by States.ALL

Every other name comes from errors defined elsewhere (the table below): the provider's
(domain.payments), an invalid order, a fenced region, a backend that is down.
"""

from __future__ import annotations

from typing import Final

from domain.errors import (
    BackendUnavailableError,
    BadRequestError,
    HemisphereError,
    NotFoundError,
    OrderNotCancellableError,
    StaleEpochError,
)
from domain.payments import (
    PaymentDeclinedError,
    PaymentError,
    PaymentInsufficientFundsError,
    PaymentProviderUnavailableError,
    PaymentTimeoutError,
)
from domain.saga import FailureReason, StepError


class SagaRefusalError(HemisphereError):
    """A step refuses to go on, for a reason the state machine routes by name."""


class InventoryInsufficientError(SagaRefusalError):
    pass


class OrderAbortedError(SagaRefusalError):
    """A compensation already began: a forward step must not go on (a re-run of the saga
    goes down the compensations instead)."""

    def __init__(self, order_id: str, step: str) -> None:
        super().__init__(f"{step}: the saga of order {order_id} is compensating; not going on")


class SagaStateError(HemisphereError):
    """A step found the order in a state its predecessors should not have left."""


# First match wins: a subclass comes before its base.
_NAMES: Final[tuple[tuple[type[Exception], str], ...]] = (
    (InventoryInsufficientError, StepError.INVENTORY_INSUFFICIENT),
    (OrderAbortedError, StepError.ORDER_ABORTED),
    (PaymentDeclinedError, StepError.PAYMENT_DECLINED),
    (PaymentInsufficientFundsError, StepError.PAYMENT_INSUFFICIENT_FUNDS),
    (PaymentProviderUnavailableError, StepError.PAYMENT_UNAVAILABLE),
    (PaymentTimeoutError, StepError.PAYMENT_TIMEOUT),
    (PaymentError, StepError.PAYMENT_FAILED),
    (StaleEpochError, StepError.REGION_FENCED),
    # Unknown customer or product, mixed currencies, a malformed request.
    (BadRequestError, StepError.ORDER_INVALID),
    (NotFoundError, StepError.ORDER_INVALID),
    (OrderNotCancellableError, StepError.ORDER_NOT_CANCELLABLE),
    (BackendUnavailableError, StepError.BACKEND_UNAVAILABLE),
)


def step_error_name(error: BaseException) -> str | None:
    """The name a step that raised `error` fails with, or None for an error nobody named
    (a bug: the activities call it Step.InternalError)."""
    for kind, name in _NAMES:
        if isinstance(error, kind):
            return name
    return None


_REASONS: Final = {
    StepError.INVENTORY_INSUFFICIENT: FailureReason.OUT_OF_STOCK,
    StepError.PAYMENT_DECLINED: FailureReason.PAYMENT_DECLINED,
    StepError.PAYMENT_INSUFFICIENT_FUNDS: FailureReason.INSUFFICIENT_FUNDS,
    StepError.PAYMENT_UNAVAILABLE: FailureReason.PAYMENT_UNAVAILABLE,
    StepError.PAYMENT_TIMEOUT: FailureReason.PAYMENT_UNAVAILABLE,
    StepError.ORDER_INVALID: FailureReason.INVALID_ORDER,
}


def failure_reason_for(error: str | None) -> str:
    """The order's failureReason for the error that sent the saga into compensation."""
    return _REASONS.get(error or "", FailureReason.INTERNAL_ERROR)
