"""The reconciler: finishes the sagas that stopped half-way.

An execution can stop without finishing its order: a worker died and the retries ran out, a
compensation kept failing, the execution hit its time cap, or Step Functions lost it (the
local endpoint forgets everything when it restarts). Such an order sits in a non-final status
(or a cancellation sits unfinished), and its saga row stays idle.

Every `interval`, the reconciler takes the sagas idle for longer than `idle_for` that have no
execution running, and re-runs each from the start under a new name (`<name>-r<attempt>`).
Re-running is safe by construction: recorded steps answer their recorded result, and once a
compensation began every forward step refuses (Order.Aborted), which sends the re-run down
the whole compensation chain. So a re-run either confirms an order that was on its way or
finishes failing it: nothing stays PENDING, and no money stays captured for an order that
ends FAILED or CANCELLED.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

from domain.saga import CHECKOUT, cancel_execution_name, checkout_execution_name
from workflows.ports import SagaEngine, SagaLedger, StalledSaga

log = logging.getLogger(__name__)


def rerun_execution_name(saga: StalledSaga, attempt: int) -> str:
    """The name of the `attempt`-th re-run: the saga's own name and a suffix, so it is new
    (Step Functions keeps names for 90 days) and still tells whose order it is."""
    if saga.saga == CHECKOUT:
        base = checkout_execution_name(saga.order_id)
    else:
        key = json.loads(saga.execution_input)["idempotencyKey"]
        base = cancel_execution_name(saga.order_id, key)
    return f"{base}-r{attempt}"


class Reconciler:
    def __init__(
        self,
        ledger: SagaLedger,
        engine: SagaEngine,
        *,
        idle_for: timedelta = timedelta(minutes=2),
        batch_size: int = 50,
    ) -> None:
        # Longer than an execution normally stays between two steps (a task's attempts and
        # retry waits), so a live saga is left alone even if its execution was not listed.
        self._idle_for = idle_for
        self._ledger = ledger
        self._engine = engine
        self._batch_size = batch_size

    async def run_once(self) -> list[str]:
        """One pass; returns the names of the executions it started."""
        stalled = await self._ledger.stalled(self._idle_for, self._batch_size)
        if not stalled:
            return []
        running = await self._engine.running_order_ids()
        started: list[str] = []
        for saga in stalled:
            if saga.order_id in running:
                continue
            attempt = await self._ledger.claim_rerun(saga.order_id, self._idle_for)
            if attempt is None:
                continue  # it moved meanwhile, or another instance took it
            name = rerun_execution_name(saga, attempt)
            await self._engine.start(saga.saga, name, saga.execution_input)
            log.warning(
                "reconciler: re-running the %s saga of %s as %s", saga.saga, saga.order_id, name
            )
            started.append(name)
        return started

    async def run(self, interval: float = 30.0) -> None:
        """A pass every `interval` seconds until cancelled; a failing pass is logged and the
        next one tries again (every instance may run one: claims are compare-and-set)."""
        failures = 0
        while True:
            try:
                await self.run_once()
                failures = 0
            except Exception as error:
                failures += 1
                log.warning(
                    "reconciler: a pass failed (%d in a row): %s",
                    failures,
                    error,
                    exc_info=failures == 1,
                )
            await asyncio.sleep(interval)


async def run_reconciler(
    ledger: SagaLedger,
    engine: SagaEngine,
    *,
    idle_for: timedelta = timedelta(minutes=2),
    interval: float = 30.0,
) -> None:
    """The reconciler's entry point for the lifespan (primary region only): runs until
    cancelled."""
    await Reconciler(ledger, engine, idle_for=idle_for).run(interval)
