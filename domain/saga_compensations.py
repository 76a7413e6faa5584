"""The compensations, named for what they undo, and the cancellation's own steps.

A compensation first answers its recorded result, if any. Then, unless the order is being
cancelled, a CONFIRMED or CANCELLED order is left alone: this is a late failure answer of a
checkout that did finish, and nothing is recorded, so a later cancellation still finds the
step to do. Otherwise the first compensation aborts the saga (for good: the abort commits even
if the compensation fails later), and every compensation undoes only what the recorded forward
steps did, so running the whole chain is always safe. MarkOrderFailed and MarkOrderCancelled
refuse an order that still holds money, stock or points: a skipped compensation then goes back
through the reconciler instead of into a final status.

Payments: an intent without an outcome (AUTHORIZING, CAPTURING) is an unknown, which the
compensation resolves by replaying the call with the step's key: the provider returns the
first outcome. Only an authorization may stay unknown (ABANDONED: a hold lapses by itself and
takes no money); if its answer turns up after all, AuthorizePayment releases the hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from domain.errors import OrderNotCancellableError
from domain.model import OrderStatus
from domain.payments import PaymentStatus
from domain.saga import FailureReason, Step, StepResult, payment_key
from domain.saga_decisions import (
    AbortSaga,
    AddPoints,
    Authorize,
    Capture,
    Decision,
    InsertFailedOrder,
    MoveStock,
    Refund,
    SetStatus,
    StartCancellation,
    StepRule,
    StockColumn,
    UpdatePayment,
    Void,
    Write,
    answer,
    complete,
    recorded_answer,
    with_writes_first,
)
from domain.saga_errors import SagaStateError
from domain.saga_state import SagaState


def _ended(state: SagaState) -> Decision | None:
    """A CONFIRMED or CANCELLED order, which no checkout compensation may touch: skipped,
    and nothing recorded."""
    status = state.order_status
    if status is OrderStatus.CONFIRMED or status is OrderStatus.CANCELLED:
        return answer({"skipped": f"the order is {status.value}"})
    return None


def compensation(step: str, reason: str, undo: Callable[[SagaState], Decision]) -> StepRule:
    """`undo` sees the saga aborted (with the first compensation's reason)."""

    def decide(state: SagaState) -> Decision:
        recorded = recorded_answer(state, step)
        if recorded is not None:
            return recorded
        # Unless it is being cancelled: a late failure answer of a checkout that finished.
        skipped = _ended(state) if not state.cancelling else None
        if skipped is not None:
            return skipped
        if state.aborted:
            return undo(state)
        aborted = replace(state, aborted=True, abort_reason=reason)
        return with_writes_first((AbortSaga(reason),), undo(aborted))

    return StepRule(step, decide)


def finished(step: str, result: StepResult) -> Callable[[SagaState], Decision]:
    """A compensation that learned from the provider there is nothing (more) to undo."""

    def decide(state: SagaState) -> Decision:
        recorded = recorded_answer(state, step)
        return recorded if recorded is not None else complete(step, result)

    return decide


# -- RevertLoyalty, ReleaseInventory --------------------------------------------------------


def _revert_loyalty(state: SagaState) -> Decision:
    granted = state.result_of(Step.UPDATE_CUSTOMER)
    points = int(granted["points"]) if granted else 0
    taken_back: tuple[Write, ...] = (AddPoints(-points),) if points else ()
    return complete(Step.REVERT_LOYALTY, {"reverted": points}, *taken_back)


def revert_loyalty(reason: str) -> StepRule:
    return compensation(Step.REVERT_LOYALTY, reason, _revert_loyalty)


def _release_inventory(state: SagaState) -> Decision:
    step = Step.RELEASE_INVENTORY
    if not state.has_recorded(Step.RESERVE_INVENTORY):
        return complete(step, {"released": []})
    # The stock is sold once the capture was recorded, reserved until then.
    sold = state.has_recorded(Step.CAPTURE_PAYMENT)
    source = StockColumn.SOLD if sold else StockColumn.RESERVED
    released = [{"productId": pid, "quantity": q} for pid, q in state.lines.items()]
    return complete(
        step,
        {"released": released, "from": source.value},
        MoveStock(state.lines, source, StockColumn.AVAILABLE),
    )


def release_inventory(reason: str) -> StepRule:
    return compensation(Step.RELEASE_INVENTORY, reason, _release_inventory)


# -- RefundPayment --------------------------------------------------------------------------


def _refund_payment(state: SagaState) -> Decision:
    step = Step.REFUND_PAYMENT
    payment = state.payment
    if payment is None or payment.status not in (PaymentStatus.CAPTURING, PaymentStatus.CAPTURED):
        return complete(step, {"refunded": False})
    if payment.status is PaymentStatus.CAPTURING:
        # Did the capture happen? Replaying it with its key gives the provider's answer.
        authorization_id = state.provider_id(payment.authorization_id)
        key = payment_key(state.order_id, Step.CAPTURE_PAYMENT)
        return Decision(call=Capture(authorization_id, key))
    return Decision(call=_refund(state, payment.capture_id))


def _refund(state: SagaState, capture_id: str | None) -> Refund:
    key = payment_key(state.order_id, Step.REFUND_PAYMENT)
    return Refund(state.provider_id(capture_id), key)


def refund_payment(reason: str) -> StepRule:
    return compensation(Step.REFUND_PAYMENT, reason, _refund_payment)


def capture_replayed(state: SagaState, capture_id: str) -> Decision:
    """The replayed capture happened: record it, then refund it."""
    captured = UpdatePayment(
        PaymentStatus.CAPTURED, when=(PaymentStatus.CAPTURING,), capture_id=capture_id
    )
    return Decision((captured,), call=_refund(state, capture_id))


def refunded(state: SagaState, refund_id: str) -> Decision:
    step = Step.REFUND_PAYMENT
    recorded = recorded_answer(state, step)
    if recorded is not None:
        return recorded
    returned = UpdatePayment(
        PaymentStatus.REFUNDED,
        when=(PaymentStatus.CAPTURING, PaymentStatus.CAPTURED),
        refund_id=refund_id,
    )
    return complete(step, {"refunded": True}, returned)


# -- VoidAuthorization ----------------------------------------------------------------------

_VOIDABLE: Final = (
    PaymentStatus.AUTHORIZING,
    PaymentStatus.AUTHORIZED,
    PaymentStatus.CAPTURE_FAILED,
)


def _void_authorization(state: SagaState) -> Decision:
    step = Step.VOID_AUTHORIZATION
    payment = state.payment
    status = payment.status if payment is not None else None
    if status in (PaymentStatus.CAPTURING, PaymentStatus.CAPTURED):
        # Money may have been taken: RefundPayment must settle that first.
        raise SagaStateError(
            f"{step}: the payment of {state.order_id} is {status.value}; refund first"
        )
    if payment is None or payment.status not in _VOIDABLE:
        return complete(step, {"voided": False})
    if payment.status is PaymentStatus.AUTHORIZING:
        # Is there a hold? Replaying the authorization with its key gives the answer.
        key = payment_key(state.order_id, Step.AUTHORIZE_PAYMENT)
        return Decision(call=Authorize(state.payment_token(), payment.amount, key))
    return Decision(call=_void(state, payment.authorization_id))


def _void(state: SagaState, authorization_id: str | None) -> Void:
    key = payment_key(state.order_id, Step.VOID_AUTHORIZATION)
    return Void(state.provider_id(authorization_id), key)


def void_authorization(reason: str) -> StepRule:
    return compensation(Step.VOID_AUTHORIZATION, reason, _void_authorization)


def authorization_abandoned(state: SagaState) -> Decision:
    """The replayed authorization got no answer either. A hold lapses by itself (days, at
    most) and takes no money, so give up rather than keep the saga, and the customer's order,
    waiting for a provider that never answers."""
    return Decision((UpdatePayment(PaymentStatus.ABANDONED, when=(PaymentStatus.AUTHORIZING,)),))


def authorization_replayed(state: SagaState, authorization_id: str) -> Decision:
    """The replayed authorization holds money: record the hold, then release it."""
    held = UpdatePayment(
        PaymentStatus.AUTHORIZED,
        when=(PaymentStatus.AUTHORIZING,),
        authorization_id=authorization_id,
    )
    return Decision((held,), call=_void(state, authorization_id))


def voided(state: SagaState) -> Decision:
    step = Step.VOID_AUTHORIZATION
    recorded = recorded_answer(state, step)
    if recorded is not None:
        return recorded
    released = UpdatePayment(
        PaymentStatus.VOIDED,
        when=(PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURE_FAILED),
    )
    return complete(step, {"voided": True}, released)


# -- MarkOrderFailed ------------------------------------------------------------------------


def mark_order_failed(reason: str, execution_input: Mapping[str, Any]) -> StepRule:
    step = Step.MARK_ORDER_FAILED

    def mark(state: SagaState) -> Decision:
        # The first compensation's reason stands: a re-run aborted with Order.Aborted must
        # not replace OUT_OF_STOCK with INTERNAL_ERROR.
        first_reason = state.abort_reason or reason
        # Only a cancellation ends a confirmed order, and never as FAILED: this is a late
        # failure answer of a checkout that did finish.
        skipped = _ended(state)
        if skipped is not None:
            return skipped
        status = state.order_status
        writes: tuple[Write, ...] = ()
        if status is None:
            shell = _failed_order(first_reason, execution_input)
            writes = (shell,) if shell is not None else ()
        else:
            require_compensated(state, step)
            if status is not OrderStatus.FAILED:
                writes = (SetStatus(OrderStatus.FAILED, first_reason),)
        result = {"status": "FAILED", "failureReason": first_reason}
        return complete(step, result, *writes, done=True)

    return compensation(step, reason, mark)


def _failed_order(reason: str, execution_input: Mapping[str, Any]) -> InsertFailedOrder | None:
    request = execution_input.get("request")
    request = request if isinstance(request, Mapping) else {}
    customer_id, key = request.get("customerId"), request.get("idempotencyKey")
    placed_in = execution_input.get("placedIn")
    if not (isinstance(customer_id, str) and isinstance(key, str) and isinstance(placed_in, str)):
        return None  # the client's customer id was wrong to begin with
    return InsertFailedOrder(customer_id, key, placed_in, reason)


def require_compensated(state: SagaState, step: str) -> None:
    """A FAILED or CANCELLED order keeps no money, no stock and no points: refuse to mark
    one that still does (the reconciler then re-runs the whole compensation chain)."""
    payment = state.payment
    if payment is not None and payment.status.may_hold_money:
        raise SagaStateError(
            f"{step}: the payment of {state.order_id} is still {payment.status.value}"
        )
    for done, undone in (
        (Step.RESERVE_INVENTORY, Step.RELEASE_INVENTORY),
        (Step.UPDATE_CUSTOMER, Step.REVERT_LOYALTY),
    ):
        if state.has_recorded(done) and not state.has_recorded(undone):
            raise SagaStateError(f"{step}: {done} of {state.order_id} was not undone by {undone}")


# -- the cancellation's own steps -----------------------------------------------------------


def begin_cancellation(execution_input: Mapping[str, Any]) -> StepRule:
    step = Step.BEGIN_CANCELLATION

    def decide(state: SagaState) -> Decision:
        recorded = recorded_answer(state, step)
        if recorded is not None:
            return recorded
        status = state.order_status
        if status is not OrderStatus.CONFIRMED:
            raise OrderNotCancellableError(
                f"order {state.order_id} is {status.value if status else 'unknown'}: "
                "only a CONFIRMED order can be cancelled"
            )
        # Aborted too: no late forward step of its checkout may run from now on.
        abort = () if state.aborted else (AbortSaga(FailureReason.CANCELLED_BY_CUSTOMER),)
        return complete(step, {"status": "CONFIRMED"}, StartCancellation(execution_input), *abort)

    return StepRule(step, decide)


def _mark_order_cancelled(state: SagaState) -> Decision:
    step = Step.MARK_ORDER_CANCELLED
    recorded = recorded_answer(state, step)
    if recorded is not None:
        return recorded
    if not state.cancelling:
        raise SagaStateError(f"{step}: order {state.order_id} has no cancellation")
    state.expect_status(step, OrderStatus.CONFIRMED)
    require_compensated(state, step)
    cancelled = SetStatus(OrderStatus.CANCELLED, FailureReason.CANCELLED_BY_CUSTOMER)
    return complete(step, {"status": "CANCELLED"}, cancelled, done=True)


MARK_ORDER_CANCELLED: Final = StepRule(Step.MARK_ORDER_CANCELLED, _mark_order_cancelled)
