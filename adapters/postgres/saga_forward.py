"""The checkout's forward steps that do more than one transaction: CreateOrder (the order is
priced from the catalog, which no rule loads) and the payment steps, which call the provider
between two transactions. What each transaction writes is the domain's
(domain.saga_forward); here are the transactions, the calls, and their order."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from adapters.postgres import repositories, saga_sql
from adapters.postgres.saga_transactions import StepTransactions, outcome
from domain import saga_forward as forward
from domain.commands import Checkout
from domain.model import OrderStatus
from domain.payments import REFUSALS
from domain.saga import Step
from domain.saga_decisions import Authorize, Capture, Void
from workflows.ports import StepResult


async def create_order(
    steps: StepTransactions,
    order_id: str,
    placed_in: str,
    command: Checkout,
    execution_input: Mapping[str, Any],
) -> StepResult:
    async with steps.transaction() as conn:
        state = await saga_sql.lock_and_load(conn, order_id, reads_stock=False)
        decision = forward.CREATE_ORDER.decide(state)
        if decision.answer is None:
            # Unknown customer or product, mixed currencies: NotFoundError / BadRequestError.
            order = await repositories.insert_order(
                conn,
                order_id,
                command.customer_id,
                [(line.product_id, line.quantity) for line in command.lines],
                OrderStatus.PENDING,
                placed_in,
                command.idempotency_key,
            )
            decision = forward.order_created(order.total, execution_input)
            await saga_sql.apply(conn, order_id, decision.writes)
        await steps.checkpoint(Step.CREATE_ORDER)
    return outcome(decision)


async def authorize_payment(steps: StepTransactions, order_id: str) -> StepResult:
    step = Step.AUTHORIZE_PAYMENT
    begun = await steps.run_rule(order_id, forward.AUTHORIZE_PAYMENT, label=":begin")
    if not isinstance(begun.call, Authorize):
        return outcome(begun)
    call = begun.call
    try:
        authorization_id = await steps.payments.authorize(
            token=call.token, amount=call.amount, idempotency_key=call.idempotency_key
        )
    except REFUSALS:
        await steps.run(order_id, forward.authorization_refused)
        raise
    await steps.checkpoint(f"{step}:provider")
    answered = partial(forward.authorization_answered, authorization_id=authorization_id)
    decision = await steps.run(order_id, answered, checkpoint=step)
    if isinstance(decision.call, Void):
        await steps.void(decision.call)
        await steps.run(order_id, forward.late_hold_voided)
    return outcome(decision)


async def capture_payment(steps: StepTransactions, order_id: str) -> StepResult:
    step = Step.CAPTURE_PAYMENT
    begun = await steps.run_rule(order_id, forward.CAPTURE_PAYMENT, label=":begin")
    if not isinstance(begun.call, Capture):
        return outcome(begun)
    call = begun.call
    try:
        capture_id = await steps.payments.capture(
            authorization_id=call.authorization_id, idempotency_key=call.idempotency_key
        )
    except REFUSALS:
        await steps.run(order_id, forward.capture_refused)
        raise
    await steps.checkpoint(f"{step}:provider")
    answered = partial(forward.capture_answered, capture_id=capture_id)
    return outcome(await steps.run(order_id, answered, checkpoint=step))
