"""The activities against an in-memory store: which error name each failure leaves with,
which failure reason a compensation records, and what each handler hands the store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from domain.errors import (
    BackendUnavailableError,
    BadRequestError,
    NotFoundError,
    OrderNotCancellableError,
    StaleEpochError,
)
from domain.model import Money, OrderStatus
from domain.payments import (
    PaymentDeclinedError,
    PaymentError,
    PaymentInsufficientFundsError,
    PaymentProviderUnavailableError,
    PaymentTimeoutError,
)
from domain.saga import FailureReason, Step, StepError
from domain.saga_decisions import AbortSaga, StepRule
from domain.saga_errors import (
    InventoryInsufficientError,
    OrderAbortedError,
    SagaStateError,
    failure_reason_for,
)
from domain.saga_state import OrderState, SagaState
from workflows.activities import INTERNAL_ERROR, Activities, StepFailure, step_error_for


@pytest.mark.parametrize(
    ("error", "name"),
    [
        (InventoryInsufficientError("no stock"), StepError.INVENTORY_INSUFFICIENT),
        (OrderAbortedError("o-1", Step.RESERVE_INVENTORY), StepError.ORDER_ABORTED),
        (PaymentDeclinedError("no"), StepError.PAYMENT_DECLINED),
        (PaymentInsufficientFundsError("no"), StepError.PAYMENT_INSUFFICIENT_FUNDS),
        (PaymentProviderUnavailableError("503"), StepError.PAYMENT_UNAVAILABLE),
        (PaymentTimeoutError("slow"), StepError.PAYMENT_TIMEOUT),
        (PaymentError("409"), "Payment.Failed"),
        (NotFoundError("no product"), StepError.ORDER_INVALID),
        (BadRequestError("two currencies"), StepError.ORDER_INVALID),
        (OrderNotCancellableError("PENDING"), StepError.ORDER_NOT_CANCELLABLE),
        (BackendUnavailableError("PostgreSQL down"), StepError.BACKEND_UNAVAILABLE),
        (StaleEpochError("demoted"), StepError.REGION_FENCED),
        (SagaStateError("out of order"), INTERNAL_ERROR),
        (KeyError("bug"), INTERNAL_ERROR),
    ],
)
def test_each_failure_leaves_with_the_name_the_state_machine_catches(
    error: Exception, name: str
) -> None:
    assert step_error_for(error) == name


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (StepError.INVENTORY_INSUFFICIENT, FailureReason.OUT_OF_STOCK),
        (StepError.PAYMENT_DECLINED, FailureReason.PAYMENT_DECLINED),
        (StepError.PAYMENT_INSUFFICIENT_FUNDS, FailureReason.INSUFFICIENT_FUNDS),
        (StepError.PAYMENT_TIMEOUT, FailureReason.PAYMENT_UNAVAILABLE),
        (StepError.PAYMENT_UNAVAILABLE, FailureReason.PAYMENT_UNAVAILABLE),
        (StepError.ORDER_INVALID, FailureReason.INVALID_ORDER),
        (StepError.ORDER_ABORTED, FailureReason.INTERNAL_ERROR),
        ("States.Timeout", FailureReason.INTERNAL_ERROR),
        (None, FailureReason.INTERNAL_ERROR),
    ],
)
def test_the_failure_reason_follows_the_error(error: str | None, reason: str) -> None:
    assert failure_reason_for(error) == reason


class RecordingStore:
    """Records each call; raises `error` if set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.error = error

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any) -> dict[str, Any]:
            self.calls.append((name, args))
            if self.error is not None:
                raise self.error
            return {"step": name}

        return call


STATE = {
    "orderId": "o-1",
    "placedIn": "eu-west-1",
    "request": {
        "customerId": "c-0001",
        "lines": [{"productId": "p-0001", "quantity": 2}],
        "paymentToken": "tok_visa",
        "idempotencyKey": "k1",
    },
    "results": {"CreateOrder": {"status": "PENDING"}},
    "error": {"Error": StepError.PAYMENT_DECLINED, "Cause": "declined"},
}


def aborts_with(rule: StepRule) -> str:
    """The failure reason a compensation's rule records when it is the first to abort."""
    pending = OrderState(OrderStatus.PENDING, Money(100, "EUR"), {})
    [abort, *_] = rule.decide(SagaState("o-1", order=pending)).writes
    assert isinstance(abort, AbortSaga)
    return abort.reason


async def test_handlers_hand_the_store_the_order_and_the_reason() -> None:
    store = RecordingStore()
    activities = Activities(store)  # type: ignore[arg-type]

    assert await activities.run(Step.RESERVE_INVENTORY, STATE) == {"step": "run_step"}
    await activities.run(Step.RELEASE_INVENTORY, STATE)
    await activities.run(Step.MARK_ORDER_FAILED, STATE)
    await activities.run(Step.CREATE_ORDER, STATE)
    await activities.run(Step.VOID_AUTHORIZATION, STATE)

    name, (order_id, rule) = store.calls[0]
    assert (name, order_id, rule.step) == ("run_step", "o-1", Step.RESERVE_INVENTORY)
    name, (order_id, rule) = store.calls[1]
    assert (name, order_id, rule.step) == ("run_step", "o-1", Step.RELEASE_INVENTORY)
    assert aborts_with(rule) == FailureReason.PAYMENT_DECLINED
    # MarkOrderFailed gets the execution input, without what the steps added: an order
    # CreateOrder never wrote is recorded FAILED from it.
    name, (order_id, rule) = store.calls[2]
    assert (name, rule.step, aborts_with(rule)) == (
        "run_step",
        Step.MARK_ORDER_FAILED,
        FailureReason.PAYMENT_DECLINED,
    )
    [_, shell, _] = rule.decide(SagaState("o-1")).writes
    assert (shell.customer_id, shell.placed_in) == ("c-0001", "eu-west-1")
    name, (order_id, placed_in, command, execution_input) = store.calls[3]
    assert (name, placed_in, command.lines[0].quantity) == ("create_order", "eu-west-1", 2)
    assert set(execution_input) == {"orderId", "placedIn", "request"}
    assert store.calls[4] == ("void_authorization", ("o-1", FailureReason.PAYMENT_DECLINED))


async def test_a_malformed_request_is_an_invalid_order() -> None:
    activities = Activities(RecordingStore())  # type: ignore[arg-type]
    state = {**STATE, "request": {**STATE["request"], "lines": []}}  # type: ignore[dict-item]
    with pytest.raises(StepFailure) as failure:
        await activities.run(Step.CREATE_ORDER, state)
    assert failure.value.error == StepError.ORDER_INVALID


async def test_unexpected_errors_and_unknown_steps_are_internal_errors() -> None:
    activities = Activities(RecordingStore(RuntimeError("a bug")))  # type: ignore[arg-type]
    with pytest.raises(StepFailure) as failure:
        await activities.run(Step.CONFIRM_ORDER, STATE)
    assert (failure.value.error, failure.value.cause) == (INTERNAL_ERROR, "a bug")
    with pytest.raises(StepFailure) as failure:
        await activities.run("Teleport", STATE)
    assert failure.value.error == INTERNAL_ERROR


def test_there_is_a_handler_for_every_step() -> None:
    handlers: Mapping[str, Any] = Activities(RecordingStore()).handlers  # type: ignore[arg-type]
    assert set(handlers) == {
        value for name, value in vars(Step).items() if not name.startswith("_")
    }
