"""The checkout's forward steps as the domain decides them, in memory: what each writes given
the saga's state, what it refuses, and which provider call a payment step makes."""

from __future__ import annotations

import pytest

from domain import saga_forward as forward
from domain.model import OrderStatus
from domain.payments import PaymentStatus
from domain.saga import Step
from domain.saga_decisions import (
    AddPoints,
    Authorize,
    Capture,
    Decision,
    InsertPayment,
    MoveStock,
    Record,
    SaveCheckoutInput,
    SetStatus,
    StepRule,
    StockColumn,
    UpdatePayment,
    Void,
)
from domain.saga_errors import InventoryInsufficientError, OrderAbortedError, SagaStateError
from tests.support.saga_states import CHECKOUT_INPUT, LINES, ORDER_ID, TOKEN, TOTAL, saga

ALL_STEPS = [
    forward.CREATE_ORDER,
    forward.RESERVE_INVENTORY,
    forward.AUTHORIZE_PAYMENT,
    forward.CAPTURE_PAYMENT,
    forward.UPDATE_CUSTOMER,
    forward.CONFIRM_ORDER,
]
PLENTY = {"p-0001": 10, "p-0002": 10}


@pytest.mark.parametrize("rule", ALL_STEPS, ids=lambda rule: rule.step)
def test_no_forward_step_runs_once_the_saga_aborted_not_even_a_recorded_one(
    rule: StepRule,
) -> None:
    with pytest.raises(OrderAbortedError, match="compensating"):
        rule.decide(saga(aborted="OUT_OF_STOCK", recorded={rule.step: {"done": 1}}))


@pytest.mark.parametrize("rule", ALL_STEPS, ids=lambda rule: rule.step)
def test_a_recorded_step_answers_its_result_and_writes_nothing(rule: StepRule) -> None:
    assert rule.decide(saga(recorded={rule.step: {"first": True}})) == Decision(
        answer={"first": True}
    )


def test_create_order_leaves_the_pricing_to_the_store_and_records_the_total() -> None:
    assert forward.CREATE_ORDER.decide(saga(None)) == Decision()
    decision = forward.order_created(TOTAL, CHECKOUT_INPUT)
    result = {"status": "PENDING", "total": {"amount": 2250, "currency": "EUR"}}
    assert decision.writes == (
        SaveCheckoutInput(CHECKOUT_INPUT),
        Record(Step.CREATE_ORDER, result),
    )
    assert decision.answer == result


def test_a_reservation_takes_every_line_or_none() -> None:
    assert forward.RESERVE_INVENTORY.reads_stock
    decision = forward.RESERVE_INVENTORY.decide(saga(available=PLENTY))
    reserved = [{"productId": "p-0001", "quantity": 2}, {"productId": "p-0002", "quantity": 1}]
    assert decision.writes == (
        MoveStock(LINES, StockColumn.AVAILABLE, StockColumn.RESERVED),
        SetStatus(OrderStatus.RESERVED),
        Record(Step.RESERVE_INVENTORY, {"reserved": reserved}),
    )
    with pytest.raises(InventoryInsufficientError, match=r"of p-0001 for order o-1"):
        forward.RESERVE_INVENTORY.decide(saga(available={"p-0001": 1, "p-0002": 10}))
    with pytest.raises(InventoryInsufficientError, match="p-0002"):
        forward.RESERVE_INVENTORY.decide(saga(available={"p-0001": 2}))  # unknown stock: none


def test_a_step_refuses_an_order_its_predecessor_did_not_leave_for_it() -> None:
    with pytest.raises(SagaStateError, match="order o-1 is RESERVED, expected PENDING"):
        forward.RESERVE_INVENTORY.decide(saga(OrderStatus.RESERVED, available=PLENTY))
    with pytest.raises(SagaStateError, match="is missing, expected CAPTURED"):
        forward.CONFIRM_ORDER.decide(saga(None))
    with pytest.raises(SagaStateError, match=r"stock .* was not read"):
        forward.RESERVE_INVENTORY.decide(saga())


# -- AuthorizePayment -----------------------------------------------------------------------


def test_an_authorization_records_its_intent_before_the_call() -> None:
    decision = forward.AUTHORIZE_PAYMENT.decide(saga(OrderStatus.RESERVED))
    assert decision.writes == (InsertPayment(PaymentStatus.AUTHORIZING, TOTAL),)
    assert decision.call == Authorize(TOKEN, TOTAL, f"{ORDER_ID}:AuthorizePayment")
    assert decision.answer is None and decision.refusal is None


@pytest.mark.parametrize("status", [PaymentStatus.AUTHORIZING, PaymentStatus.DECLINED])
def test_an_unknown_or_refused_authorization_is_replayed_with_its_key(
    status: PaymentStatus,
) -> None:
    decision = forward.AUTHORIZE_PAYMENT.decide(saga(OrderStatus.RESERVED, payment=status))
    assert decision.writes == ()
    assert decision.call == Authorize(TOKEN, TOTAL, f"{ORDER_ID}:AuthorizePayment")


def test_an_authorization_needs_a_payment_it_may_replay_and_a_token() -> None:
    with pytest.raises(SagaStateError, match="payment of o-1 is VOIDED"):
        forward.AUTHORIZE_PAYMENT.decide(saga(OrderStatus.RESERVED, payment=PaymentStatus.VOIDED))
    with pytest.raises(SagaStateError, match="no payment token"):
        forward.AUTHORIZE_PAYMENT.decide(saga(OrderStatus.RESERVED, checkout_input=None))


def test_a_hold_is_recorded_with_the_orders_new_status() -> None:
    decision = forward.authorization_answered(
        saga(OrderStatus.RESERVED, payment=PaymentStatus.AUTHORIZING), "auth-9"
    )
    held = UpdatePayment(
        PaymentStatus.AUTHORIZED,
        when=(PaymentStatus.AUTHORIZING, PaymentStatus.ABANDONED),
        authorization_id="auth-9",
    )
    assert decision.writes == (
        held,
        SetStatus(OrderStatus.AUTHORIZED),
        Record(Step.AUTHORIZE_PAYMENT, {"authorizationId": "auth-9"}),
    )


def test_a_hold_answered_after_the_abort_is_recorded_and_the_step_refuses() -> None:
    state = saga(OrderStatus.RESERVED, payment=PaymentStatus.AUTHORIZING, aborted="X")
    decision = forward.authorization_answered(state, "auth-9")
    assert [type(write) for write in decision.writes] == [UpdatePayment]
    assert decision.call is None  # VoidAuthorization has not run: it will void this hold
    assert isinstance(decision.refusal, OrderAbortedError)


def test_a_hold_answered_after_the_void_gave_up_is_released_by_the_step() -> None:
    state = saga(
        OrderStatus.RESERVED,
        payment=PaymentStatus.ABANDONED,
        aborted="X",
        recorded={Step.VOID_AUTHORIZATION: {"voided": False, "abandoned": True}},
    )
    decision = forward.authorization_answered(state, "auth-9")
    assert decision.call == Void("auth-9", f"{ORDER_ID}:VoidAuthorization")
    assert isinstance(decision.refusal, OrderAbortedError)
    assert forward.late_hold_voided(state).writes == (
        UpdatePayment(PaymentStatus.VOIDED, when=(PaymentStatus.AUTHORIZED,)),
    )
    # Voided by the compensation already (the replay found the hold): nothing left to do.
    state = saga(
        OrderStatus.RESERVED,
        payment=PaymentStatus.VOIDED,
        aborted="X",
        recorded={Step.VOID_AUTHORIZATION: {"voided": True}},
    )
    assert forward.authorization_answered(state, "auth-9").call is None


def test_a_refused_authorization_is_recorded_declined() -> None:
    assert forward.authorization_refused(saga()).writes == (
        UpdatePayment(PaymentStatus.DECLINED, when=(PaymentStatus.AUTHORIZING,)),
    )


# -- CapturePayment -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status", [PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURING, PaymentStatus.CAPTURE_FAILED]
)
def test_a_capture_records_its_intent_and_calls_with_its_key(status: PaymentStatus) -> None:
    decision = forward.CAPTURE_PAYMENT.decide(saga(OrderStatus.AUTHORIZED, payment=status))
    assert decision.writes == (
        UpdatePayment(PaymentStatus.CAPTURING, when=(PaymentStatus.AUTHORIZED,)),
    )
    assert decision.call == Capture("auth-1", f"{ORDER_ID}:CapturePayment")


def test_a_capture_needs_a_hold() -> None:
    with pytest.raises(SagaStateError, match="payment of o-1 is missing"):
        forward.CAPTURE_PAYMENT.decide(saga(OrderStatus.AUTHORIZED))
    with pytest.raises(SagaStateError, match="is DECLINED"):
        forward.CAPTURE_PAYMENT.decide(saga(OrderStatus.AUTHORIZED, payment=PaymentStatus.DECLINED))


def test_a_capture_sells_the_reserved_stock() -> None:
    state = saga(OrderStatus.AUTHORIZED, payment=PaymentStatus.CAPTURING)
    decision = forward.capture_answered(state, "cap-9")
    assert decision.writes == (
        UpdatePayment(PaymentStatus.CAPTURED, when=(PaymentStatus.CAPTURING,), capture_id="cap-9"),
        MoveStock(LINES, StockColumn.RESERVED, StockColumn.SOLD),
        SetStatus(OrderStatus.CAPTURED),
        Record(Step.CAPTURE_PAYMENT, {"captureId": "cap-9"}),
    )
    aborted = forward.capture_answered(
        saga(OrderStatus.AUTHORIZED, payment=PaymentStatus.CAPTURING, aborted="X"), "cap-9"
    )
    # Recorded as captured (RefundPayment refunds it), but the stock stays reserved.
    assert [type(write) for write in aborted.writes] == [UpdatePayment]
    assert isinstance(aborted.refusal, OrderAbortedError)
    assert forward.capture_refused(state).writes == (
        UpdatePayment(PaymentStatus.CAPTURE_FAILED, when=(PaymentStatus.CAPTURING,)),
    )


# -- UpdateCustomer, ConfirmOrder -----------------------------------------------------------


def test_loyalty_points_follow_the_total_and_confirmation_ends_the_saga() -> None:
    points = forward.UPDATE_CUSTOMER.decide(saga(OrderStatus.CAPTURED))
    assert points.writes == (AddPoints(22), Record(Step.UPDATE_CUSTOMER, {"points": 22}))
    confirmed = forward.CONFIRM_ORDER.decide(saga(OrderStatus.CAPTURED))
    assert confirmed.writes == (
        SetStatus(OrderStatus.CONFIRMED),
        Record(Step.CONFIRM_ORDER, {"status": "CONFIRMED"}, done=True),
    )


def test_a_conditional_payment_write_says_where_it_leaves_the_payment() -> None:
    held = UpdatePayment(PaymentStatus.AUTHORIZED, when=(PaymentStatus.ABANDONED,))
    assert held.status_after(saga(payment=PaymentStatus.ABANDONED).payment) is (
        PaymentStatus.AUTHORIZED
    )
    assert held.status_after(saga(payment=PaymentStatus.VOIDED).payment) is PaymentStatus.VOIDED
    assert held.status_after(None) is None
