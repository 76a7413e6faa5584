"""Step Functions in-process, for the tests: runs the sagas' ASL files (the subset they use:
Task with Retry and Catch by error name, Succeed, Fail; ResultPath) calling the activities
directly instead of through a queue. It implements workflows.ports.SagaEngine, so the
reconciler drives it as it drives Step Functions.

What it models of the real thing, on purpose:
- a worker that dies before answering (`Crash` raised in a step): the message comes back and
  the step runs again within the same attempt (the queue's visibility timeout is shorter than
  HeartbeatSeconds); after MAX_RECEIVES deliveries the attempt times out instead;
- an execution that Step Functions loses (`Lost` raised in a step): it stops there for good;
- retries wait IntervalSeconds * BackoffRate^n (capped, full jitter), scaled down to
  milliseconds so tests do not sleep;
- `gate`: awaited before every task attempt, so a test can choose which execution moves next.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from workflows.activities import StepFailure
from workflows.definitions import SagaTiming, definitions
from workflows.worker import StepRunner

# A crashing message goes to the dead-letter queue after this many deliveries
# (adapters.sqs.MAX_RECEIVES); the state machine's attempt then times out.
MAX_RECEIVES = 5


class Crash(BaseException):
    """The worker running the step dies here: nothing after this point happens, and the
    state machine gets no answer. BaseException, as the worker catches only Exception."""


class Lost(BaseException):
    """Step Functions loses the execution while this step runs (the worker finishes it)."""


@dataclass
class Execution:
    name: str
    saga: str
    order_id: str
    status: str = "RUNNING"  # SUCCEEDED, FAILED, LOST
    error: str | None = None
    states: list[str] = field(default_factory=list)
    output: dict[str, Any] | None = None
    task: asyncio.Task[None] | None = None


Gate = Callable[[Execution, str], Awaitable[None]]


class InProcessSagaEngine:
    def __init__(
        self,
        run_step: StepRunner,
        *,
        timing: SagaTiming | None = None,
        time_scale: float = 0.001,
        gate: Gate | None = None,
    ) -> None:
        self._run_step = run_step
        self._definitions = {saga: json.loads(text) for saga, text in definitions(timing).items()}
        self._time_scale = time_scale
        self._gate = gate
        self.executions: dict[str, Execution] = {}

    # -- workflows.ports.SagaEngine -----------------------------------------------------------

    async def running_order_ids(self) -> set[str]:
        return {e.order_id for e in self.executions.values() if e.status == "RUNNING"}

    async def start(self, saga: str, name: str, execution_input: str) -> None:
        if name in self.executions:
            return
        state = json.loads(execution_input)
        execution = Execution(name, saga, str(state["orderId"]))
        self.executions[name] = execution
        execution.task = asyncio.create_task(self._run(execution, state), name=name)

    # -- for the tests ------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait until no execution is running (those started meanwhile included)."""
        while True:
            pending = [e.task for e in self.executions.values() if e.task and not e.task.done()]
            if not pending:
                return
            await asyncio.gather(*pending)

    async def run(self, saga: str, name: str, execution_input: str) -> Execution:
        await self.start(saga, name, execution_input)
        execution = self.executions[name]
        assert execution.task is not None
        await execution.task
        return execution

    # -- the interpreter ----------------------------------------------------------------------

    async def _run(self, execution: Execution, state: dict[str, Any]) -> None:
        definition = self._definitions[execution.saga]
        name = definition["StartAt"]
        try:
            while True:
                spec = definition["States"][name]
                execution.states.append(name)
                if spec["Type"] == "Succeed":
                    execution.status, execution.output = "SUCCEEDED", state
                    return
                if spec["Type"] == "Fail":
                    execution.status, execution.error = "FAILED", spec["Error"]
                    return
                assert spec["Type"] == "Task", f"state type {spec['Type']} is not modelled"
                outcome = await self._task(execution, spec, state)
                if isinstance(outcome, dict):
                    state = _put(state, spec["ResultPath"], outcome)
                    name = spec["Next"]
                    continue
                error, cause = outcome
                catcher = next((c for c in spec.get("Catch", []) if _matches(c, error)), None)
                if catcher is None:
                    execution.status, execution.error = "FAILED", error
                    return
                state = _put(state, catcher["ResultPath"], {"Error": error, "Cause": cause})
                name = catcher["Next"]
        except Lost:
            execution.status = "LOST"

    async def _task(
        self, execution: Execution, spec: dict[str, Any], state: dict[str, Any]
    ) -> dict[str, Any] | tuple[str, str]:
        """The step's result, or (error, cause) once the retriers gave up."""
        step = spec["Parameters"]["MessageBody"]["step"]
        retries = [0] * len(spec.get("Retry", []))
        while True:
            if self._gate is not None:
                await self._gate(execution, step)
            error, cause = await self._attempt(step, state)
            if error is None:
                return json.loads(cause)
            matching = [
                i for i, retrier in enumerate(spec.get("Retry", [])) if _matches(retrier, error)
            ]
            if not matching or retries[matching[0]] >= spec["Retry"][matching[0]]["MaxAttempts"]:
                return error, cause
            retries[matching[0]] += 1
            wait = _retry_wait(spec["Retry"][matching[0]], retries[matching[0]])
            await asyncio.sleep(self._time_scale * wait)

    async def _attempt(self, step: str, state: dict[str, Any]) -> tuple[str | None, str]:
        """(None, output JSON) or (error, cause) of one attempt, redelivering after crashes."""
        for _ in range(MAX_RECEIVES):
            try:
                # A copy, as a message is: a step cannot change the state it was sent.
                result = await self._run_step(step, copy.deepcopy(state))
                return None, json.dumps(result)
            except StepFailure as failure:
                return failure.error, failure.cause
            except Crash:
                continue  # the message comes back after its visibility timeout
        return "States.HeartbeatTimeout", f"{step}: no answer after {MAX_RECEIVES} deliveries"


def _matches(handler: dict[str, Any], error: str) -> bool:
    names = handler["ErrorEquals"]
    # As on AWS: States.ALL matches anything, States.Timeout also a heartbeat timeout.
    return (
        "States.ALL" in names
        or error in names
        or (error == "States.HeartbeatTimeout" and "States.Timeout" in names)
    )


def _retry_wait(retrier: dict[str, Any], attempt: int) -> float:
    wait = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** (attempt - 1)
    wait = min(wait, retrier.get("MaxDelaySeconds", wait))
    return random.uniform(0, wait) if retrier.get("JitterStrategy") == "FULL" else float(wait)


def _put(state: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """ResultPath: `$.a.b` sets state["a"]["b"], creating what is missing."""
    assert path.startswith("$."), f"ResultPath {path} is not modelled"
    result = copy.deepcopy(state)
    node = result
    *parents, last = path[2:].split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return result
