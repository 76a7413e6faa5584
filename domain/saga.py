"""The sagas' vocabulary, shared by the resolvers that start them, the ASL files that run them
(workflows/*.asl.json) and the activities that do each step.

Every step is one PostgreSQL transaction, idempotent per (order, step): a redelivered task, or
a whole saga re-run from the start by the reconciler, changes nothing twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from domain.commands import CancelOrder, Checkout

# State machines (their ASL files are workflows/<name>.asl.json).
CHECKOUT: Final = "checkout"
CANCEL: Final = "cancel"


class Step:
    """Activity names: the `step` field of each task message."""

    CREATE_ORDER: Final = "CreateOrder"
    RESERVE_INVENTORY: Final = "ReserveInventory"
    AUTHORIZE_PAYMENT: Final = "AuthorizePayment"
    CAPTURE_PAYMENT: Final = "CapturePayment"
    UPDATE_CUSTOMER: Final = "UpdateCustomer"
    CONFIRM_ORDER: Final = "ConfirmOrder"
    # Compensations, named for what they undo.
    VOID_AUTHORIZATION: Final = "VoidAuthorization"
    REFUND_PAYMENT: Final = "RefundPayment"
    RELEASE_INVENTORY: Final = "ReleaseInventory"
    REVERT_LOYALTY: Final = "RevertLoyalty"
    MARK_ORDER_FAILED: Final = "MarkOrderFailed"
    # Cancellation.
    BEGIN_CANCELLATION: Final = "BeginCancellation"
    MARK_ORDER_CANCELLED: Final = "MarkOrderCancelled"


class StepError:
    """Error names a step fails with (SendTaskFailure's `error`), caught by name in the ASL."""

    INVENTORY_INSUFFICIENT: Final = "Inventory.Insufficient"
    PAYMENT_DECLINED: Final = "Payment.Declined"
    PAYMENT_INSUFFICIENT_FUNDS: Final = "Payment.InsufficientFunds"
    ORDER_INVALID: Final = "Order.Invalid"  # unknown customer or product, mixed currencies
    ORDER_ABORTED: Final = "Order.Aborted"  # a compensation already began: go forward no more
    ORDER_NOT_CANCELLABLE: Final = "Order.NotCancellable"
    # Transient: retried by the state machine with backoff and jitter, up to a cap.
    PAYMENT_UNAVAILABLE: Final = "Payment.ProviderUnavailable"
    PAYMENT_TIMEOUT: Final = "Payment.Timeout"
    BACKEND_UNAVAILABLE: Final = "Backend.Unavailable"
    # Not caught by name (States.ALL sends them to the compensations): a provider error of
    # no known kind, and a step of a demoted primary (the new primary's reconciler goes on).
    PAYMENT_FAILED: Final = "Payment.Failed"
    REGION_FENCED: Final = "Region.Fenced"

    TRANSIENT: Final = (PAYMENT_UNAVAILABLE, PAYMENT_TIMEOUT, BACKEND_UNAVAILABLE)


class FailureReason:
    """Order.failureReason as clients see it."""

    OUT_OF_STOCK: Final = "OUT_OF_STOCK"
    PAYMENT_DECLINED: Final = "PAYMENT_DECLINED"
    INSUFFICIENT_FUNDS: Final = "INSUFFICIENT_FUNDS"
    PAYMENT_UNAVAILABLE: Final = "PAYMENT_UNAVAILABLE"
    INVALID_ORDER: Final = "INVALID_ORDER"
    INTERNAL_ERROR: Final = "INTERNAL_ERROR"
    CANCELLED_BY_CUSTOMER: Final = "CANCELLED_BY_CUSTOMER"


# A step's result as recorded in `saga_steps` and returned to the state machine, which keeps it
# under `$.results.<Step>` (a JSON object).
StepResult = dict[str, Any]


def payment_key(order_id: str, step: str) -> str:
    """The provider's idempotency key of one step of one order: a retry, a redelivery or a
    replay by a compensation gets the first outcome again."""
    return f"{order_id}:{step}"


# One loyalty point per whole unit of the order's currency (amounts are in minor units).
def loyalty_points_for(total_minor_units: int) -> int:
    return total_minor_units // 100


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def order_id_for(customer_id: str, idempotency_key: str) -> str:
    """The same key for the same customer always means the same order."""
    return "o-" + _digest("checkout", customer_id, idempotency_key)[:24]


def checkout_execution_name(order_id: str) -> str:
    """Step Functions names an execution once per state machine (90 days for Standard):
    starting it again with the same input returns the running one, so a retried checkout
    starts nothing new. The reconciler's re-runs add an attempt suffix."""
    return f"checkout-{order_id}"


def cancel_execution_name(order_id: str, idempotency_key: str) -> str:
    return f"cancel-{order_id}-{_digest(idempotency_key)[:12]}"


def checkout_request(command: Checkout) -> dict[str, Any]:
    """The part of a checkout's execution input that identifies the request: two checkouts
    with one key are the same request exactly when these are equal."""
    return {
        "customerId": command.customer_id,
        "lines": [
            {"productId": line.product_id, "quantity": line.quantity} for line in command.lines
        ],
        "paymentToken": command.payment_token,
        "idempotencyKey": command.idempotency_key,
    }


def checkout_input(command: Checkout, placed_in: str) -> str:
    """The execution input, canonical JSON (sorted keys) so equal requests are equal text."""
    request = checkout_request(command)
    return json.dumps(
        {
            "orderId": order_id_for(command.customer_id, command.idempotency_key),
            "placedIn": placed_in,
            "request": request,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def cancel_input(command: CancelOrder) -> str:
    return json.dumps(
        {"orderId": command.order_id, "idempotencyKey": command.idempotency_key},
        sort_keys=True,
        separators=(",", ":"),
    )
