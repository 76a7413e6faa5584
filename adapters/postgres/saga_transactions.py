"""One transaction of a saga step: lock the order's saga, load its state, ask the domain's
rule, write what it decided, commit. The steps' modules (saga_forward, saga_compensations)
chain these around the provider calls; PostgresSagaStore (saga.py) runs the rest as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg

from adapters.postgres import saga_sql
from adapters.postgres.errors import RelationalStoreUnavailableError
from adapters.postgres.pool import UNREACHABLE, Connection
from adapters.postgres.topology import EpochFence
from domain.errors import BackendUnavailableError
from domain.saga import Step
from domain.saga_decisions import Decision, StepRule, Void
from domain.saga_state import SagaState
from workflows.ports import PaymentProvider, StepResult

ACQUIRE_TIMEOUT = 5.0

# Called inside every transaction of a step just before it commits, and right after every
# provider call of its own, with a label ("ReserveInventory", "AuthorizePayment:begin",
# "…:provider"). Production passes nothing; the tests raise there to crash a step at each point.
Checkpoint = Callable[[str], Awaitable[None]]

# PostgreSQL went away: before the step (unreachable) or during it (the connection dropped,
# and the transaction with it). Either way nothing was committed; the step may run again.
_LOST: tuple[type[BaseException], ...] = (*UNREACHABLE, asyncpg.ConnectionDoesNotExistError)


class StepContentionError(BackendUnavailableError):
    """A deadlock or serialization failure with some other writer: the state machine retries
    (Backend.Unavailable). Steps of different orders take shared rows in one order and do
    not deadlock each other (domain.saga_decisions)."""


class StepTransactions:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        dsn: str,
        payments: PaymentProvider,
        *,
        checkpoint: Checkpoint | None = None,
        fence: EpochFence | None = None,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self.payments = payments
        self._checkpoint = checkpoint
        # The region and epoch the worker runs under: every transaction first checks that
        # the database names the same (a demoted primary's steps write nothing).
        self._fence = fence

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
                if self._fence is not None:
                    await self._fence.check(conn)
                yield conn
        except _LOST as exc:
            raise RelationalStoreUnavailableError(self._dsn, exc) from exc
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            raise StepContentionError(f"the step lost a race in PostgreSQL ({exc}); retry") from exc

    async def run(
        self,
        order_id: str,
        decide: Callable[[SagaState], Decision],
        *,
        checkpoint: str | None = None,
        reads_stock: bool = False,
    ) -> Decision:
        """One transaction: lock, load, decide, write; `checkpoint` is its label, if any."""
        async with self.transaction() as conn:
            state = await saga_sql.lock_and_load(conn, order_id, reads_stock=reads_stock)
            decision = decide(state)
            await saga_sql.apply(conn, order_id, decision.writes)
            if checkpoint is not None:
                await self.checkpoint(checkpoint)
        return decision

    async def run_rule(self, order_id: str, rule: StepRule, *, label: str = "") -> Decision:
        """A step's first (or only) transaction, labelled by its step."""
        return await self.run(
            order_id, rule.decide, checkpoint=rule.step + label, reads_stock=rule.reads_stock
        )

    async def void(self, call: Void) -> None:
        """Release a hold: VoidAuthorization's own, or a late one AuthorizePayment learned of."""
        await self.payments.void(
            authorization_id=call.authorization_id, idempotency_key=call.idempotency_key
        )
        await self.checkpoint(f"{Step.VOID_AUTHORIZATION}:provider")

    async def checkpoint(self, label: str) -> None:
        if self._checkpoint is not None:
            await self._checkpoint(label)


def outcome(decision: Decision) -> StepResult:
    """What a step ends with once its writes committed: its answer, or its refusal."""
    if decision.refusal is not None:
        raise decision.refusal
    if decision.answer is None or decision.call is not None:
        raise RuntimeError(f"a step's last decision must answer: {decision!r}")
    return decision.answer
