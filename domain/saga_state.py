"""What a saga step sees: the order's saga, the order, its payment and the steps recorded so
far, as the store loaded them under the saga's lock (adapters/postgres/saga_sql.py).

A step's rule (domain.saga_forward, domain.saga_compensations) reads this and nothing else,
so every rule is a pure function tested in memory (tests/unit/test_saga_*.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.model import Money, OrderStatus
from domain.payments import PaymentStatus
from domain.saga import StepResult
from domain.saga_errors import SagaStateError


@dataclass(frozen=True, slots=True)
class OrderState:
    status: OrderStatus
    total: Money
    # Quantity per product, in product order: the order in which stock rows are locked.
    lines: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class PaymentState:
    status: PaymentStatus
    amount: Money
    authorization_id: str | None = None
    capture_id: str | None = None


@dataclass(frozen=True, slots=True)
class SagaState:
    order_id: str
    # The checkout's execution input (CreateOrder saves it): the payment token is in it.
    checkout_input: Mapping[str, Any] | None = None
    # A compensation began (or a cancellation): no forward step may run from now on.
    aborted: bool = False
    # The failure reason of the first compensation; MarkOrderFailed keeps it.
    abort_reason: str | None = None
    # BeginCancellation ran: the compensations undo a confirmed order.
    cancelling: bool = False
    order: OrderState | None = None
    payment: PaymentState | None = None
    # The results of every step of this order that succeeded (one transaction each).
    recorded: Mapping[str, StepResult] = field(default_factory=dict)
    # Units available per product of the order's lines, locked: loaded only for a rule that
    # reads the stock (StepRule.reads_stock).
    available: Mapping[str, int] | None = None

    def result_of(self, step: str) -> StepResult | None:
        return self.recorded.get(step)

    def has_recorded(self, step: str) -> bool:
        return step in self.recorded

    @property
    def order_status(self) -> OrderStatus | None:
        return self.order.status if self.order is not None else None

    @property
    def lines(self) -> Mapping[str, int]:
        return self.order.lines if self.order is not None else {}

    def expect_status(self, step: str, expected: OrderStatus) -> OrderState:
        """The order, after checking the previous step left it in `expected`."""
        if self.order is None or self.order.status is not expected:
            found = self.order.status.value if self.order is not None else "missing"
            raise SagaStateError(
                f"{step}: order {self.order_id} is {found}, expected {expected.value}"
            )
        return self.order

    def payment_token(self) -> str:
        request = (self.checkout_input or {}).get("request") or {}
        token = request.get("paymentToken")
        if not isinstance(token, str):
            raise SagaStateError(f"the saga of order {self.order_id} has no payment token")
        return token

    def provider_id(self, identifier: str | None) -> str:
        """An id the provider gave the payment, which its status says it must have."""
        if identifier is None:
            raise SagaStateError(f"the payment of order {self.order_id} lacks a provider id")
        return identifier
