"""The reconciler over fakes of its ports: it re-runs each stalled saga that has no running
execution, once per claim, under a name Step Functions has not seen."""

from __future__ import annotations

from datetime import timedelta

from domain.saga import CANCEL, CHECKOUT
from workflows.reconciler import Reconciler, rerun_execution_name


class Stalled:
    def __init__(self, order_id: str, saga: str, execution_input: str) -> None:
        self.order_id, self.saga, self.execution_input = order_id, saga, execution_input


class FakeLedger:
    def __init__(self, stalled: list[Stalled], refuse: frozenset[str] = frozenset()) -> None:
        self._stalled = stalled
        self.refuse = refuse
        self.attempts: dict[str, int] = {}

    async def stalled(self, idle_for: timedelta, limit: int) -> list[Stalled]:
        return self._stalled[:limit]

    async def claim_rerun(self, order_id: str, idle_for: timedelta) -> int | None:
        if order_id in self.refuse:
            return None
        self.attempts[order_id] = self.attempts.get(order_id, 0) + 1
        return self.attempts[order_id]


class FakeEngine:
    def __init__(self, running: set[str]) -> None:
        self.running = running
        self.started: list[tuple[str, str, str]] = []

    async def running_order_ids(self) -> set[str]:
        return self.running

    async def start(self, saga: str, name: str, execution_input: str) -> None:
        self.started.append((saga, name, execution_input))


async def test_the_reconciler_reruns_stalled_sagas_without_a_running_execution() -> None:
    ledger = FakeLedger(
        [
            Stalled("o-1", CHECKOUT, '{"orderId":"o-1"}'),
            Stalled("o-2", CHECKOUT, '{"orderId":"o-2"}'),  # its execution still runs
            Stalled("o-3", CANCEL, '{"idempotencyKey":"c9","orderId":"o-3"}'),
            Stalled("o-4", CHECKOUT, '{"orderId":"o-4"}'),  # another instance claimed it
        ],
        refuse=frozenset({"o-4"}),
    )
    engine = FakeEngine(running={"o-2"})
    reconciler = Reconciler(ledger, engine, idle_for=timedelta(minutes=2))  # type: ignore[arg-type]

    assert await reconciler.run_once() == ["checkout-o-1-r1", engine.started[1][1]]
    assert engine.started[0] == (CHECKOUT, "checkout-o-1-r1", '{"orderId":"o-1"}')
    assert engine.started[1][0] == CANCEL and engine.started[1][1].startswith("cancel-o-3-")
    assert engine.started[1][1].endswith("-r1")
    # The next pass takes the next attempt number: a new name Step Functions has not seen.
    await reconciler.run_once()
    assert engine.started[2][1] == "checkout-o-1-r2"
    assert rerun_execution_name(Stalled("o-9", CHECKOUT, "{}"), 7) == "checkout-o-9-r7"  # type: ignore[arg-type]
