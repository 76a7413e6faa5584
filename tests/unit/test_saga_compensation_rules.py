"""The compensations and the cancellation's steps as the domain decides them, in memory: the
abort that the first one writes, what each undoes given what the forward steps recorded, how
an unknown payment outcome is resolved, and when an order may be marked FAILED or CANCELLED."""

from __future__ import annotations

import re

import pytest

from adapters.postgres.migrations import MIGRATIONS_DIR
from domain import saga_compensations as compensations
from domain.errors import OrderNotCancellableError
from domain.model import OrderStatus
from domain.payments import PaymentStatus
from domain.saga import FailureReason, Step
from domain.saga_decisions import (
    AbortSaga,
    AddPoints,
    Authorize,
    Capture,
    Decision,
    InsertFailedOrder,
    MoveStock,
    Record,
    Refund,
    SetStatus,
    StartCancellation,
    StepRule,
    StockColumn,
    UpdatePayment,
    Void,
)
from domain.saga_errors import SagaStateError
from tests.support.saga_states import CHECKOUT_INPUT, LINES, ORDER_ID, TOKEN, TOTAL, saga

REASON = FailureReason.PAYMENT_DECLINED
CANCELLED = FailureReason.CANCELLED_BY_CUSTOMER
COMPENSATIONS = [
    compensations.revert_loyalty(REASON),
    compensations.refund_payment(REASON),
    compensations.void_authorization(REASON),
    compensations.release_inventory(REASON),
    compensations.mark_order_failed(REASON, CHECKOUT_INPUT),
]
ABORT = AbortSaga(REASON)


@pytest.mark.parametrize("rule", COMPENSATIONS, ids=lambda rule: rule.step)
def test_the_first_compensation_aborts_the_saga_and_a_recorded_one_writes_nothing(
    rule: StepRule,
) -> None:
    assert rule.decide(saga()).writes[0] == ABORT
    assert ABORT not in rule.decide(saga(aborted=FailureReason.OUT_OF_STOCK)).writes
    assert rule.decide(saga(recorded={rule.step: {"once": 1}})) == Decision(answer={"once": 1})


@pytest.mark.parametrize("rule", COMPENSATIONS, ids=lambda rule: rule.step)
@pytest.mark.parametrize("status", [OrderStatus.CONFIRMED, OrderStatus.CANCELLED])
def test_a_checkout_compensation_leaves_a_finished_order_alone(
    rule: StepRule, status: OrderStatus
) -> None:
    """A late failure answer of a checkout that finished: nothing written, not even the
    record, so a later cancellation still finds the step to do."""
    assert rule.decide(saga(status, payment=PaymentStatus.CAPTURED)) == Decision(
        answer={"skipped": f"the order is {status.value}"}
    )


def test_a_cancellation_compensates_a_confirmed_order() -> None:
    state = saga(
        OrderStatus.CONFIRMED,
        aborted=CANCELLED,
        cancelling=True,
        recorded={Step.RESERVE_INVENTORY: {}, Step.CAPTURE_PAYMENT: {}},
    )
    decision = compensations.release_inventory(CANCELLED).decide(state)
    assert decision.writes[0] == MoveStock(LINES, StockColumn.SOLD, StockColumn.AVAILABLE)


def test_loyalty_points_are_taken_back_as_granted() -> None:
    granted = saga(recorded={Step.UPDATE_CUSTOMER: {"points": 22}}, aborted=REASON)
    assert compensations.revert_loyalty(REASON).decide(granted).writes == (
        AddPoints(-22),
        Record(Step.REVERT_LOYALTY, {"reverted": 22}),
    )
    none = compensations.revert_loyalty(REASON).decide(saga(aborted=REASON))
    assert none.writes == (Record(Step.REVERT_LOYALTY, {"reverted": 0}),)


@pytest.mark.parametrize(
    ("recorded", "source"),
    [
        ((Step.RESERVE_INVENTORY,), StockColumn.RESERVED),
        ((Step.RESERVE_INVENTORY, Step.CAPTURE_PAYMENT), StockColumn.SOLD),
    ],
)
def test_stock_goes_back_from_where_the_recorded_steps_put_it(
    recorded: tuple[str, ...], source: StockColumn
) -> None:
    state = saga(OrderStatus.AUTHORIZED, recorded=recorded, aborted=REASON)
    decision = compensations.release_inventory(REASON).decide(state)
    released = [{"productId": "p-0001", "quantity": 2}, {"productId": "p-0002", "quantity": 1}]
    assert decision.writes == (
        MoveStock(LINES, source, StockColumn.AVAILABLE),
        Record(Step.RELEASE_INVENTORY, {"released": released, "from": source.value}),
    )


def test_nothing_reserved_is_nothing_released() -> None:
    decision = compensations.release_inventory(REASON).decide(saga(aborted=REASON))
    assert decision.writes == (Record(Step.RELEASE_INVENTORY, {"released": []}),)


# -- RefundPayment --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [None, PaymentStatus.AUTHORIZED, PaymentStatus.REFUNDED])
def test_no_capture_is_no_refund(status: PaymentStatus | None) -> None:
    decision = compensations.refund_payment(REASON).decide(saga(payment=status, aborted=REASON))
    assert decision.writes == (Record(Step.REFUND_PAYMENT, {"refunded": False}),)


def test_a_capture_is_refunded_and_an_unknown_one_replayed_first() -> None:
    refund = compensations.refund_payment(REASON)
    captured = refund.decide(saga(payment=PaymentStatus.CAPTURED, aborted=REASON))
    assert captured.call == Refund("cap-1", f"{ORDER_ID}:RefundPayment")
    unknown = refund.decide(saga(payment=PaymentStatus.CAPTURING, aborted=REASON))
    assert unknown.call == Capture("auth-1", f"{ORDER_ID}:CapturePayment")

    replayed = compensations.capture_replayed(saga(payment=PaymentStatus.CAPTURING), "cap-9")
    assert replayed.writes == (
        UpdatePayment(PaymentStatus.CAPTURED, when=(PaymentStatus.CAPTURING,), capture_id="cap-9"),
    )
    assert replayed.call == Refund("cap-9", f"{ORDER_ID}:RefundPayment")
    assert compensations.refunded(saga(payment=PaymentStatus.CAPTURED), "ref-9").writes == (
        UpdatePayment(
            PaymentStatus.REFUNDED,
            when=(PaymentStatus.CAPTURING, PaymentStatus.CAPTURED),
            refund_id="ref-9",
        ),
        Record(Step.REFUND_PAYMENT, {"refunded": True}),
    )


def test_a_provider_answer_after_another_run_recorded_the_step_changes_nothing() -> None:
    done = saga(recorded={Step.REFUND_PAYMENT: {"refunded": True}})
    assert compensations.refunded(done, "ref-9") == Decision(answer={"refunded": True})
    nothing = compensations.finished(Step.REFUND_PAYMENT, {"refunded": False})
    assert nothing(done) == Decision(answer={"refunded": True})
    assert nothing(saga()).writes == (Record(Step.REFUND_PAYMENT, {"refunded": False}),)


# -- VoidAuthorization ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [PaymentStatus.CAPTURING, PaymentStatus.CAPTURED])
def test_money_that_may_be_taken_is_refunded_before_any_void(status: PaymentStatus) -> None:
    with pytest.raises(SagaStateError, match=f"is {status.value}; refund first"):
        compensations.void_authorization(REASON).decide(saga(payment=status))


@pytest.mark.parametrize(
    "status",
    [None, PaymentStatus.DECLINED, PaymentStatus.VOIDED, PaymentStatus.REFUNDED],
)
def test_no_hold_is_no_void(status: PaymentStatus | None) -> None:
    decision = compensations.void_authorization(REASON).decide(saga(payment=status))
    assert decision.writes == (ABORT, Record(Step.VOID_AUTHORIZATION, {"voided": False}))


@pytest.mark.parametrize("status", [PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURE_FAILED])
def test_a_hold_is_voided(status: PaymentStatus) -> None:
    decision = compensations.void_authorization(REASON).decide(saga(payment=status))
    assert decision.writes == (ABORT,)
    assert decision.call == Void("auth-1", f"{ORDER_ID}:VoidAuthorization")
    assert compensations.voided(saga(payment=status)).writes == (
        UpdatePayment(
            PaymentStatus.VOIDED, when=(PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURE_FAILED)
        ),
        Record(Step.VOID_AUTHORIZATION, {"voided": True}),
    )


def test_an_unknown_authorization_is_replayed_then_voided_or_abandoned() -> None:
    state = saga(payment=PaymentStatus.AUTHORIZING, aborted=REASON)
    replay = compensations.void_authorization(REASON).decide(state)
    assert replay.call == Authorize(TOKEN, TOTAL, f"{ORDER_ID}:AuthorizePayment")

    held = compensations.authorization_replayed(state, "auth-9")
    assert held.writes == (
        UpdatePayment(
            PaymentStatus.AUTHORIZED, when=(PaymentStatus.AUTHORIZING,), authorization_id="auth-9"
        ),
    )
    assert held.call == Void("auth-9", f"{ORDER_ID}:VoidAuthorization")
    assert compensations.authorization_abandoned(state).writes == (
        UpdatePayment(PaymentStatus.ABANDONED, when=(PaymentStatus.AUTHORIZING,)),
    )


# -- MarkOrderFailed ------------------------------------------------------------------------

UNDONE = {
    Step.RESERVE_INVENTORY: {},
    Step.RELEASE_INVENTORY: {},
    Step.UPDATE_CUSTOMER: {},
    Step.REVERT_LOYALTY: {},
}


def test_a_failed_order_keeps_the_first_compensations_reason() -> None:
    state = saga(OrderStatus.RESERVED, recorded=UNDONE, aborted=FailureReason.OUT_OF_STOCK)
    decision = compensations.mark_order_failed(REASON, CHECKOUT_INPUT).decide(state)
    failed = {"status": "FAILED", "failureReason": FailureReason.OUT_OF_STOCK}
    assert decision.writes == (
        SetStatus(OrderStatus.FAILED, FailureReason.OUT_OF_STOCK),
        Record(Step.MARK_ORDER_FAILED, failed, done=True),
    )
    # Already FAILED (a re-run): recorded again, no second history entry.
    again = compensations.mark_order_failed(REASON, CHECKOUT_INPUT).decide(
        saga(OrderStatus.FAILED, aborted=FailureReason.OUT_OF_STOCK)
    )
    assert again.writes == (Record(Step.MARK_ORDER_FAILED, failed, done=True),)


@pytest.mark.parametrize("status", [s for s in PaymentStatus if s.may_hold_money])
def test_an_order_is_not_failed_while_its_payment_may_hold_money(status: PaymentStatus) -> None:
    with pytest.raises(SagaStateError, match=f"is still {status.value}"):
        compensations.mark_order_failed(REASON, {}).decide(saga(payment=status))


@pytest.mark.parametrize(
    ("done", "undone"),
    [
        (Step.RESERVE_INVENTORY, Step.RELEASE_INVENTORY),
        (Step.UPDATE_CUSTOMER, Step.REVERT_LOYALTY),
    ],
)
def test_an_order_is_not_failed_before_its_steps_were_undone(done: str, undone: str) -> None:
    recorded = {step: {} for step in UNDONE if step != undone}
    with pytest.raises(SagaStateError, match=f"{done} of o-1 was not undone by {undone}"):
        compensations.mark_order_failed(REASON, {}).decide(saga(recorded=recorded))


def test_an_order_create_order_refused_is_recorded_failed_from_the_checkouts_input() -> None:
    decision = compensations.mark_order_failed(REASON, CHECKOUT_INPUT).decide(saga(None))
    assert decision.writes[:2] == (
        ABORT,
        InsertFailedOrder("c-0001", "k1", "eu-west-1", REASON),
    )
    # Without a customer to put it under, there is no order: the saga still ends.
    nowhere = compensations.mark_order_failed(REASON, {"orderId": ORDER_ID}).decide(saga(None))
    assert [type(write) for write in nowhere.writes] == [AbortSaga, Record]


def test_a_cancelled_order_is_never_failed() -> None:
    state = saga(OrderStatus.CANCELLED, aborted=CANCELLED, cancelling=True)
    decision = compensations.mark_order_failed(REASON, {}).decide(state)
    assert decision == Decision(answer={"skipped": "the order is CANCELLED"})


# -- the cancellation -----------------------------------------------------------------------

CANCEL_INPUT = {"orderId": ORDER_ID, "idempotencyKey": "c1"}


@pytest.mark.parametrize("status", [None, OrderStatus.CAPTURED, OrderStatus.FAILED])
def test_only_a_confirmed_order_can_be_cancelled(status: OrderStatus | None) -> None:
    with pytest.raises(OrderNotCancellableError, match="only a CONFIRMED order"):
        compensations.begin_cancellation(CANCEL_INPUT).decide(saga(status))


def test_a_cancellation_aborts_its_checkout_for_good() -> None:
    decision = compensations.begin_cancellation(CANCEL_INPUT).decide(saga(OrderStatus.CONFIRMED))
    assert decision.writes == (
        StartCancellation(CANCEL_INPUT),
        AbortSaga(CANCELLED),
        Record(Step.BEGIN_CANCELLATION, {"status": "CONFIRMED"}),
    )


def test_a_cancelled_order_keeps_nothing() -> None:
    rule = compensations.MARK_ORDER_CANCELLED
    with pytest.raises(SagaStateError, match="has no cancellation"):
        rule.decide(saga(OrderStatus.CONFIRMED, payment=PaymentStatus.REFUNDED))
    with pytest.raises(SagaStateError, match="is still CAPTURED"):
        rule.decide(saga(OrderStatus.CONFIRMED, payment=PaymentStatus.CAPTURED, cancelling=True))
    state = saga(
        OrderStatus.CONFIRMED, payment=PaymentStatus.REFUNDED, recorded=UNDONE, cancelling=True
    )
    assert rule.decide(state).writes == (
        SetStatus(OrderStatus.CANCELLED, CANCELLED),
        Record(Step.MARK_ORDER_CANCELLED, {"status": "CANCELLED"}, done=True),
    )


def test_the_statuses_that_may_hold_money_and_those_the_database_allows() -> None:
    assert {status for status in PaymentStatus if status.may_hold_money} == {
        PaymentStatus.AUTHORIZING,
        PaymentStatus.AUTHORIZED,
        PaymentStatus.CAPTURING,
        PaymentStatus.CAPTURED,
        PaymentStatus.CAPTURE_FAILED,
    }
    migration = (MIGRATIONS_DIR / "0002_sagas.sql").read_text()
    check = migration[migration.index("payments_status_check") :]
    allowed = set(re.findall(r"'([A-Z_]+)'", check[: check.index("));")]))
    assert allowed == {status.value for status in PaymentStatus}
