"""The checkout's forward steps: what each writes given the loaded state, and what it refuses.

Every forward step first refuses an aborted saga (Order.Aborted), even one whose result is
recorded: a compensation began, so a re-run of the saga goes down the compensations instead.
Then a recorded result is answered again and nothing is written (a redelivered task, two
executions racing, a re-run), and only then does the step's own rule run.

The payment steps call the provider between two transactions, never inside one (a slow
provider must not hold row locks): the first records the intent (AUTHORIZING, CAPTURING) and
names the call; the provider's answer then goes to `*_answered`, a refusal to `*_refused`
(the step then fails with the provider's error), no answer nowhere: the intent stays, and
the compensations resolve it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from domain.model import Money, OrderStatus
from domain.payments import PaymentStatus
from domain.saga import Step, StepResult, loyalty_points_for, payment_key
from domain.saga_decisions import (
    AddPoints,
    Authorize,
    Capture,
    Decision,
    InsertPayment,
    MoveStock,
    SaveCheckoutInput,
    SetStatus,
    StepRule,
    StockColumn,
    UpdatePayment,
    Void,
    complete,
    recorded_answer,
)
from domain.saga_errors import InventoryInsufficientError, OrderAbortedError, SagaStateError
from domain.saga_state import SagaState


def forward_step(
    step: str, rule: Callable[[SagaState], Decision], *, reads_stock: bool = False
) -> StepRule:
    def decide(state: SagaState) -> Decision:
        if state.aborted:
            raise OrderAbortedError(state.order_id, step)
        recorded = recorded_answer(state, step)
        return recorded if recorded is not None else rule(state)

    return StepRule(step, decide, reads_stock)


# -- CreateOrder ----------------------------------------------------------------------------


def _insert_the_order(state: SagaState) -> Decision:
    """The order is priced from the catalog, which no rule loads: this answers nothing, and
    the store inserts it (or fails with NotFoundError / BadRequestError: Order.Invalid),
    then records `order_created`."""
    return Decision()


CREATE_ORDER: Final = forward_step(Step.CREATE_ORDER, _insert_the_order)


def order_created(total: Money, execution_input: Mapping[str, Any]) -> Decision:
    result = {"status": "PENDING", "total": {"amount": total.amount, "currency": total.currency}}
    return complete(Step.CREATE_ORDER, result, SaveCheckoutInput(execution_input))


# -- ReserveInventory: every line or none ---------------------------------------------------


def _reserve_inventory(state: SagaState) -> Decision:
    step = Step.RESERVE_INVENTORY
    order = state.expect_status(step, OrderStatus.PENDING)
    if state.available is None:
        raise SagaStateError(f"{step}: the stock of order {state.order_id} was not read")
    available = state.available
    short = [pid for pid, quantity in order.lines.items() if available.get(pid, 0) < quantity]
    if short:
        raise InventoryInsufficientError(
            f"not enough stock of {', '.join(short)} for order {state.order_id}"
        )
    reserved = [{"productId": pid, "quantity": q} for pid, q in order.lines.items()]
    return complete(
        step,
        {"reserved": reserved},
        MoveStock(order.lines, StockColumn.AVAILABLE, StockColumn.RESERVED),
        SetStatus(OrderStatus.RESERVED),
    )


RESERVE_INVENTORY: Final = forward_step(
    Step.RESERVE_INVENTORY, _reserve_inventory, reads_stock=True
)

# -- AuthorizePayment -----------------------------------------------------------------------


def _authorize_payment(state: SagaState) -> Decision:
    step = Step.AUTHORIZE_PAYMENT
    order = state.expect_status(step, OrderStatus.RESERVED)
    payment = state.payment
    if payment is None:
        intent: tuple[InsertPayment, ...] = (InsertPayment(PaymentStatus.AUTHORIZING, order.total),)
    elif payment.status in (PaymentStatus.AUTHORIZING, PaymentStatus.DECLINED):
        # An earlier attempt's outcome is unknown, or was a refusal: the key replays it, and
        # a redelivered task gets the answer the first one got.
        intent = ()
    else:
        raise SagaStateError(f"{step}: payment of {state.order_id} is {payment.status.value}")
    call = Authorize(state.payment_token(), order.total, payment_key(state.order_id, step))
    return Decision(intent, call=call)


AUTHORIZE_PAYMENT: Final = forward_step(Step.AUTHORIZE_PAYMENT, _authorize_payment)


def authorization_refused(state: SagaState) -> Decision:
    declined = UpdatePayment(PaymentStatus.DECLINED, when=(PaymentStatus.AUTHORIZING,))
    return Decision((declined,))


def authorization_answered(state: SagaState, authorization_id: str) -> Decision:
    step = Step.AUTHORIZE_PAYMENT
    recorded = recorded_answer(state, step)
    if recorded is not None:
        return recorded
    # The hold exists whatever happens next: record it before anything else.
    held = UpdatePayment(
        PaymentStatus.AUTHORIZED,
        when=(PaymentStatus.AUTHORIZING, PaymentStatus.ABANDONED),
        authorization_id=authorization_id,
    )
    if not state.aborted:
        result = {"authorizationId": authorization_id}
        return complete(step, result, held, SetStatus(OrderStatus.AUTHORIZED))
    # VoidAuthorization ran while the provider answered us, and gave up learning the outcome
    # (ABANDONED): the hold we just learned of is ours to release (then late_hold_voided).
    late = (
        state.has_recorded(Step.VOID_AUTHORIZATION)
        and held.status_after(state.payment) is PaymentStatus.AUTHORIZED
    )
    void = Void(authorization_id, payment_key(state.order_id, Step.VOID_AUTHORIZATION))
    aborted = OrderAbortedError(state.order_id, step)
    return Decision((held,), call=void if late else None, refusal=aborted)


def late_hold_voided(state: SagaState) -> Decision:
    voided = UpdatePayment(PaymentStatus.VOIDED, when=(PaymentStatus.AUTHORIZED,))
    return Decision((voided,))


# -- CapturePayment -------------------------------------------------------------------------

_CAPTURABLE: Final = (
    PaymentStatus.AUTHORIZED,
    PaymentStatus.CAPTURING,  # an earlier attempt's outcome is unknown: the key replays it
    PaymentStatus.CAPTURE_FAILED,  # an earlier attempt was refused: so is this one
)


def _capture_payment(state: SagaState) -> Decision:
    step = Step.CAPTURE_PAYMENT
    state.expect_status(step, OrderStatus.AUTHORIZED)
    payment = state.payment
    if payment is None or payment.status not in _CAPTURABLE:
        status = payment.status.value if payment is not None else "missing"
        raise SagaStateError(f"{step}: payment of {state.order_id} is {status}")
    authorization_id = state.provider_id(payment.authorization_id)
    intent = UpdatePayment(PaymentStatus.CAPTURING, when=(PaymentStatus.AUTHORIZED,))
    return Decision((intent,), call=Capture(authorization_id, payment_key(state.order_id, step)))


CAPTURE_PAYMENT: Final = forward_step(Step.CAPTURE_PAYMENT, _capture_payment)


def capture_refused(state: SagaState) -> Decision:
    """The hold remains: VoidAuthorization releases it."""
    failed = UpdatePayment(PaymentStatus.CAPTURE_FAILED, when=(PaymentStatus.CAPTURING,))
    return Decision((failed,))


def capture_answered(state: SagaState, capture_id: str) -> Decision:
    step = Step.CAPTURE_PAYMENT
    recorded = recorded_answer(state, step)
    if recorded is not None:
        return recorded
    captured = UpdatePayment(
        PaymentStatus.CAPTURED, when=(PaymentStatus.CAPTURING,), capture_id=capture_id
    )
    if state.aborted:
        # Compensating meanwhile: RefundPayment saw CAPTURING (written under the lock before
        # the call) and refunds by replaying the capture, or it will; it never gives up, so
        # unlike a late authorization nothing is left for this step to undo.
        return Decision((captured,), refusal=OrderAbortedError(state.order_id, step))
    return complete(
        step,
        {"captureId": capture_id},
        captured,
        MoveStock(state.lines, StockColumn.RESERVED, StockColumn.SOLD),
        SetStatus(OrderStatus.CAPTURED),
    )


# -- UpdateCustomer, ConfirmOrder -----------------------------------------------------------


def _update_customer(state: SagaState) -> Decision:
    order = state.expect_status(Step.UPDATE_CUSTOMER, OrderStatus.CAPTURED)
    points = loyalty_points_for(order.total.amount)
    return complete(Step.UPDATE_CUSTOMER, {"points": points}, AddPoints(points))


UPDATE_CUSTOMER: Final = forward_step(Step.UPDATE_CUSTOMER, _update_customer)


def _confirm_order(state: SagaState) -> Decision:
    state.expect_status(Step.CONFIRM_ORDER, OrderStatus.CAPTURED)
    result: StepResult = {"status": "CONFIRMED"}
    return complete(Step.CONFIRM_ORDER, result, SetStatus(OrderStatus.CONFIRMED), done=True)


CONFIRM_ORDER: Final = forward_step(Step.CONFIRM_ORDER, _confirm_order)
