"""The sagas' steps on the relational model (workflows.ports.SagaStore and SagaLedger).

The rules are the domain's: what each step writes given the order's state, what a
compensation must undo, when a step refuses (domain.saga_forward, domain.saga_compensations).
This adapter locks, loads, asks and writes (saga_transactions.StepTransactions, saga_sql):

- Every step and compensation does its work in one transaction that changes the model,
  appends the new snapshots to the outbox and records the step's result in `saga_steps`.
  A step that finds its result recorded answers it and changes nothing, so a redelivered
  task, two executions racing, or a whole saga re-run from the start each do the work once.
- Each transaction first locks the order's row in `sagas`: the steps of one order never
  interleave. Shared rows (stock, customers) are then taken in one order, so steps of
  different orders cannot deadlock each other (a deadlock with some other writer surfaces as
  StepContentionError, which the state machine retries).
- The payment steps call the provider between two transactions, never inside one (a slow
  provider must not hold row locks): saga_forward.py and saga_compensations.py chain them.
  CreateOrder is there too: the order is priced from the catalog, which no rule loads.

Errors: the rules raise domain.saga_errors (InventoryInsufficientError, OrderAbortedError,
SagaStateError) and domain errors; PostgreSQL out of reach is RelationalStoreUnavailableError,
a lost race StepContentionError (both BackendUnavailableError: retried).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from adapters.postgres import saga_compensations, saga_forward
from adapters.postgres.saga_transactions import Checkpoint, StepTransactions, outcome
from adapters.postgres.topology import EpochFence
from domain.commands import Checkout
from domain.saga import CANCEL, CHECKOUT
from domain.saga_decisions import StepRule
from workflows.ports import PaymentProvider, StepResult


@dataclass(frozen=True, slots=True)
class StalledSagaRow:
    order_id: str
    saga: str
    execution_input: str


def _canonical(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class PostgresSagaStore:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        dsn: str,
        payments: PaymentProvider,
        *,
        checkpoint: Checkpoint | None = None,
        fence: EpochFence | None = None,
    ) -> None:
        self._steps = StepTransactions(pool, dsn, payments, checkpoint=checkpoint, fence=fence)

    async def run_step(self, order_id: str, rule: StepRule) -> StepResult:
        return outcome(await self._steps.run_rule(order_id, rule))

    async def create_order(
        self, order_id: str, placed_in: str, command: Checkout, execution_input: Mapping[str, Any]
    ) -> StepResult:
        return await saga_forward.create_order(
            self._steps, order_id, placed_in, command, execution_input
        )

    async def authorize_payment(self, order_id: str) -> StepResult:
        return await saga_forward.authorize_payment(self._steps, order_id)

    async def capture_payment(self, order_id: str) -> StepResult:
        return await saga_forward.capture_payment(self._steps, order_id)

    async def refund_payment(self, order_id: str, reason: str) -> StepResult:
        return await saga_compensations.refund_payment(self._steps, order_id, reason)

    async def void_authorization(self, order_id: str, reason: str) -> StepResult:
        return await saga_compensations.void_authorization(self._steps, order_id, reason)

    # -- the reconciler's side (workflows.ports.SagaLedger) --------------------------------

    async def stalled(self, idle_for: timedelta, limit: int) -> list[StalledSagaRow]:
        async with self._steps.transaction() as conn:
            rows = await conn.fetch(
                """
                SELECT order_id, checkout_input, cancel_input
                  FROM sagas
                 WHERE done_at IS NULL
                   AND updated_at < now() - $1::interval
                   AND (checkout_input IS NOT NULL OR cancel_input IS NOT NULL)
                 ORDER BY updated_at
                 LIMIT $2
                """,
                idle_for,
                limit,
            )
        # A cancellation is the later saga of an order: it is the one to finish.
        return [
            StalledSagaRow(row["order_id"], CANCEL, _canonical(row["cancel_input"]))
            if row["cancel_input"] is not None
            else StalledSagaRow(row["order_id"], CHECKOUT, _canonical(row["checkout_input"]))
            for row in rows
        ]

    async def claim_rerun(self, order_id: str, idle_for: timedelta) -> int | None:
        async with self._steps.transaction() as conn:
            # Compare and set: of two reconcilers, or a reconciler and a step, one wins.
            attempt = await conn.fetchval(
                """
                UPDATE sagas SET attempts = attempts + 1, updated_at = now()
                 WHERE order_id = $1 AND done_at IS NULL
                   AND updated_at < now() - $2::interval
                RETURNING attempts
                """,
                order_id,
                idle_for,
            )
        return int(attempt) if attempt is not None else None
