"""SagaStates to run the domain's saga rules on, in memory (no database)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from domain.model import Money, OrderStatus
from domain.payments import PaymentStatus
from domain.saga import StepResult
from domain.saga_state import OrderState, PaymentState, SagaState

ORDER_ID = "o-1"
TOTAL = Money(2250, "EUR")
LINES = {"p-0001": 2, "p-0002": 1}
TOKEN = "tok_visa"
CHECKOUT_INPUT: dict[str, Any] = {
    "orderId": ORDER_ID,
    "placedIn": "eu-west-1",
    "request": {
        "customerId": "c-0001",
        "lines": [{"productId": p, "quantity": q} for p, q in LINES.items()],
        "paymentToken": TOKEN,
        "idempotencyKey": "k1",
    },
}


def saga(
    status: OrderStatus | None = OrderStatus.PENDING,
    *,
    payment: PaymentStatus | None = None,
    authorization_id: str | None = None,
    capture_id: str | None = None,
    recorded: Mapping[str, StepResult] | Iterable[str] = (),
    aborted: str | None = None,
    cancelling: bool = False,
    available: Mapping[str, int] | None = None,
    checkout_input: Mapping[str, Any] | None = CHECKOUT_INPUT,
) -> SagaState:
    """The saga of order o-1 (two lines, 22.50 EUR); `aborted` is the abort's reason.
    A payment in a status past AUTHORIZING has its provider ids unless they are given."""
    order = OrderState(status, TOTAL, LINES) if status is not None else None
    held = payment not in (None, PaymentStatus.AUTHORIZING, PaymentStatus.DECLINED)
    taken = payment in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED)
    return SagaState(
        order_id=ORDER_ID,
        checkout_input=checkout_input,
        aborted=aborted is not None,
        abort_reason=aborted,
        cancelling=cancelling,
        order=order,
        payment=PaymentState(
            payment,
            TOTAL,
            authorization_id or ("auth-1" if held else None),
            capture_id or ("cap-1" if taken else None),
        )
        if payment is not None
        else None,
        recorded=recorded if isinstance(recorded, Mapping) else {s: {} for s in recorded},
        available=available,
    )
