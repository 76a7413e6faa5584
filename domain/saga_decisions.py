"""What a saga step decides: the writes of one transaction, then what the step does next.

A rule answers a SagaState with a Decision: `writes` (applied in order, in the transaction
that loaded the state; the store appends each changed aggregate's event), then either the
step's `answer` to the state machine, a provider `call` to make once the writes committed
(payment steps), or a `refusal` to raise once they committed. A rule that raises instead
writes nothing: the whole transaction rolls back.

The order of writes is the order of locks: payment, then stock rows (in product order), then
the customer, then the order's status. Steps of different orders take shared rows (stock,
customers) in that order, so they cannot deadlock each other.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.model import Money, OrderStatus
from domain.payments import PaymentStatus
from domain.saga import StepResult
from domain.saga_errors import SagaRefusalError
from domain.saga_state import PaymentState, SagaState

# -- writes ---------------------------------------------------------------------------------


class StockColumn(enum.Enum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    SOLD = "sold"


@dataclass(frozen=True, slots=True)
class Record:
    """The step succeeded: its result, found by a redelivery or a re-run. `done`: the saga
    reached its last step."""

    step: str
    result: StepResult
    done: bool = False


@dataclass(frozen=True, slots=True)
class AbortSaga:
    """The first compensation: from now on every forward step refuses (Order.Aborted)."""

    reason: str


@dataclass(frozen=True, slots=True)
class StartCancellation:
    """A cancellation saga begins on the order (its input kept for the reconciler)."""

    execution_input: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SaveCheckoutInput:
    """The checkout's input, for the reconciler and for the payment steps (the token)."""

    execution_input: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class InsertPayment:
    status: PaymentStatus
    amount: Money


@dataclass(frozen=True, slots=True)
class UpdatePayment:
    """Move the payment to `status` if it is in one of `when` (else leave it: another run
    already moved it on), keeping the ids it had unless new ones are given."""

    status: PaymentStatus
    when: tuple[PaymentStatus, ...]
    authorization_id: str | None = None
    capture_id: str | None = None
    refund_id: str | None = None

    def status_after(self, payment: PaymentState | None) -> PaymentStatus | None:
        if payment is None:
            return None
        return self.status if payment.status in self.when else payment.status


@dataclass(frozen=True, slots=True)
class MoveStock:
    """Move each line's quantity from one stock column to another."""

    lines: Mapping[str, int]
    source: StockColumn
    target: StockColumn


@dataclass(frozen=True, slots=True)
class AddPoints:
    """Loyalty points to the order's customer (negative: taken back)."""

    points: int


@dataclass(frozen=True, slots=True)
class SetStatus:
    """The order's new status, with its history entry (and failure reason, if given)."""

    status: OrderStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class InsertFailedOrder:
    """CreateOrder refused the order, yet the client was told it is PENDING: record it as
    FAILED, with no lines and nothing charged, so the client sees how it ended (if its
    customer exists: otherwise there is nowhere to put it)."""

    customer_id: str
    idempotency_key: str
    placed_in: str
    reason: str


Write = (
    Record
    | AbortSaga
    | StartCancellation
    | SaveCheckoutInput
    | InsertPayment
    | UpdatePayment
    | MoveStock
    | AddPoints
    | SetStatus
    | InsertFailedOrder
)

# -- provider calls (each with the idempotency key of the step it belongs to) ---------------


@dataclass(frozen=True, slots=True)
class Authorize:
    token: str
    amount: Money
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Capture:
    authorization_id: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Void:
    authorization_id: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Refund:
    capture_id: str
    idempotency_key: str


ProviderCall = Authorize | Capture | Void | Refund

# -- decisions and rules --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    writes: tuple[Write, ...] = ()
    answer: StepResult | None = None
    call: ProviderCall | None = None
    refusal: SagaRefusalError | None = None


def complete(step: str, result: StepResult, *writes: Write, done: bool = False) -> Decision:
    """The step does `writes`, records `result` and answers it."""
    return Decision((*writes, Record(step, result, done)), answer=result)


def answer(result: StepResult) -> Decision:
    """The step answers without writing: a result recorded before, or nothing to do."""
    return Decision(answer=result)


def recorded_answer(state: SagaState, step: str) -> Decision | None:
    """The step's recorded result, answered again (nothing written), if it has one."""
    recorded = state.result_of(step)
    return answer(recorded) if recorded is not None else None


def with_writes_first(writes: tuple[Write, ...], decision: Decision) -> Decision:
    return Decision((*writes, *decision.writes), decision.answer, decision.call, decision.refusal)


@dataclass(frozen=True, slots=True)
class StepRule:
    """A step's rule as the store runs it: one transaction that locks the order's saga, loads
    its state (and, if `reads_stock`, locks and reads the stock of its lines), and writes
    what `decide` answers."""

    step: str
    decide: Callable[[SagaState], Decision] = field(repr=False)
    reads_stock: bool = False
