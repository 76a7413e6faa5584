"""The compensations that call the provider: RefundPayment and VoidAuthorization. Each
resolves an unknown outcome first (CAPTURING, AUTHORIZING) by replaying the forward step's
call with its key, then undoes what the provider holds. What each transaction writes is the
domain's (domain.saga_compensations); here are the transactions, the calls, and their order.
"""

from __future__ import annotations

import logging
from functools import partial

from adapters.postgres.saga_transactions import StepTransactions, outcome
from domain import saga_compensations as compensations
from domain import saga_forward as forward
from domain.payments import NO_ANSWER, REFUSALS
from domain.saga import Step
from domain.saga_decisions import Authorize, Capture, Refund, Void
from workflows.ports import StepResult

log = logging.getLogger(__name__)


async def refund_payment(steps: StepTransactions, order_id: str, reason: str) -> StepResult:
    step = Step.REFUND_PAYMENT
    rule = compensations.refund_payment(reason)
    decision = await steps.run_rule(order_id, rule, label=":begin")
    if isinstance(decision.call, Capture):
        replay = decision.call
        try:
            capture_id = await steps.payments.capture(
                authorization_id=replay.authorization_id, idempotency_key=replay.idempotency_key
            )
        except REFUSALS:
            await steps.run(order_id, forward.capture_refused)
            nothing = compensations.finished(step, {"refunded": False})
            return outcome(await steps.run(order_id, nothing, checkpoint=step))
        replayed = partial(compensations.capture_replayed, capture_id=capture_id)
        decision = await steps.run(order_id, replayed)
    if isinstance(decision.call, Refund):
        refund = decision.call
        refund_id = await steps.payments.refund(
            capture_id=refund.capture_id, idempotency_key=refund.idempotency_key
        )
        await steps.checkpoint(f"{step}:provider")
        refunded = partial(compensations.refunded, refund_id=refund_id)
        decision = await steps.run(order_id, refunded, checkpoint=step)
    return outcome(decision)


async def void_authorization(steps: StepTransactions, order_id: str, reason: str) -> StepResult:
    step = Step.VOID_AUTHORIZATION
    rule = compensations.void_authorization(reason)
    decision = await steps.run_rule(order_id, rule, label=":begin")
    if isinstance(decision.call, Authorize):
        replay = decision.call
        try:
            authorization_id = await steps.payments.authorize(
                token=replay.token, amount=replay.amount, idempotency_key=replay.idempotency_key
            )
        except REFUSALS:
            await steps.run(order_id, forward.authorization_refused)
            nothing = compensations.finished(step, {"voided": False})
            return outcome(await steps.run(order_id, nothing, checkpoint=step))
        except NO_ANSWER as exc:
            log.warning("%s: authorization of %s abandoned: %s", step, order_id, exc)
            await steps.run(order_id, compensations.authorization_abandoned)
            gave_up = compensations.finished(step, {"voided": False, "abandoned": True})
            return outcome(await steps.run(order_id, gave_up, checkpoint=step))
        replayed = partial(compensations.authorization_replayed, authorization_id=authorization_id)
        decision = await steps.run(order_id, replayed)
    if isinstance(decision.call, Void):
        await steps.void(decision.call)
        decision = await steps.run(order_id, compensations.voided, checkpoint=step)
    return outcome(decision)
