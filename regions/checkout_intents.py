"""Checkouts acknowledged only once their intent is in the primary's relational model
(adapters.postgres.checkout_intents says why): the saga is started, then its input recorded
where the database replicates it, then the client is answered."""

from __future__ import annotations

from domain.commands import CancelOrder, Checkout
from domain.saga import checkout_input, order_id_for
from regions.routing import RoutedCheckoutIntents
from resolvers.ports import OrderWorkflows


class RecordedCheckouts:
    """OrderWorkflows whose checkouts are answered once started and recorded."""

    def __init__(self, workflows: OrderWorkflows, intents: RoutedCheckoutIntents) -> None:
        self._workflows = workflows
        self._intents = intents

    async def start_checkout(self, command: Checkout, placed_in: str) -> bool:
        # Started first: an intent recorded for a start that then failed would be re-run by
        # the reconciler although the client was told it failed. A failure to record after
        # a start is answered as an error; the client's retry (same idempotencyKey) finds
        # the same execution and records it then.
        await self._workflows.start_checkout(command, placed_in)
        order_id = order_id_for(command.customer_id, command.idempotency_key)
        # Whether the order is new is known here for nothing: every saga step creates the
        # saga's row in the transaction that does its work, so a row this INSERT made means
        # no step has run and there is no order yet. The resolver then skips reading it.
        return await self._intents.record(order_id, checkout_input(command, placed_in))

    async def start_cancellation(self, command: CancelOrder) -> None:
        # A cancellation's saga records its input in its first step, and an order that is
        # lost with the primary has nothing to cancel: nothing to add here.
        await self._workflows.start_cancellation(command)
