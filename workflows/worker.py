"""The task worker: takes the sagas' task messages from the queue, runs each step and answers
the state machine (the callback pattern of `sqs:sendMessage.waitForTaskToken`).

A message is deleted only after its answer was delivered, or once an answer is moot (Step
Functions no longer waits for the token: the task timed out or the execution ended). A worker
that dies before answering leaves the message on the queue; it comes back after the queue's
visibility timeout, and the step, idempotent per (order, step), returns its recorded result.
So delivery is at least once and every step's effect is exactly once.

Messages are handled concurrently, up to `concurrency` at a time; the worker only receives
as many as it has free slots, so a message never waits in a worker while another is idle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from workflows.activities import StepFailure
from workflows.ports import QueuedTask, StepResult, TaskAnswers, TaskQueue
from workflows.tracing import work_span

log = logging.getLogger(__name__)

# (step, execution state) -> the step's result; raises StepFailure (Activities.run).
StepRunner = Callable[[str, Mapping[str, Any]], Awaitable[StepResult]]

# SQS hands out at most 10 messages per receive.
_MAX_BATCH = 10


class MalformedTaskError(ValueError):
    """A message that is not a task of ours: no token to answer, nothing to retry."""


@dataclass(frozen=True, slots=True)
class TaskMessage:
    """The body the ASL's Task states send: {"step", "input", "taskToken"}."""

    step: str
    state: dict[str, Any]
    token: str


def parse_task(body: str) -> TaskMessage:
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise MalformedTaskError(f"the body is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise MalformedTaskError("the body is not an object")
    step, state, token = message.get("step"), message.get("input"), message.get("taskToken")
    if not isinstance(step, str) or not isinstance(token, str) or not token:
        raise MalformedTaskError("the body lacks a step or a taskToken")
    if not isinstance(state, dict):
        raise MalformedTaskError("the body's input is not an object")
    return TaskMessage(step, state, token)


class TaskWorker:
    def __init__(
        self,
        queue: TaskQueue,
        answers: TaskAnswers,
        run_step: StepRunner,
        *,
        concurrency: int = 8,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._queue = queue
        self._answers = answers
        self._run_step = run_step
        self._concurrency = concurrency
        self._retry_initial = retry_initial
        self._retry_max = retry_max

    async def run(self) -> None:
        """Receive and handle tasks until cancelled. On cancellation the tasks in hand are
        cancelled too: unanswered, their messages come back to another worker."""
        in_flight: set[asyncio.Task[None]] = set()
        failures = 0
        try:
            while True:
                if len(in_flight) >= self._concurrency:
                    await asyncio.wait(set(in_flight), return_when=asyncio.FIRST_COMPLETED)
                    continue
                free = min(_MAX_BATCH, self._concurrency - len(in_flight))
                try:
                    tasks = await self._queue.receive(free)
                except Exception as error:
                    failures += 1
                    delay = self._retry_delay(failures)
                    log.warning(
                        "saga worker: receiving failed (%d in a row), retrying in %.1fs: %s",
                        failures,
                        delay,
                        error,
                        exc_info=failures == 1,
                    )
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                for task in tasks:
                    handling = asyncio.create_task(self.handle(task), name="saga-task")
                    in_flight.add(handling)
                    handling.add_done_callback(in_flight.discard)
                    handling.add_done_callback(_log_crash)
        finally:
            for handling in in_flight:
                handling.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def handle(self, task: QueuedTask) -> None:
        """Run one task and answer it; delete its message once answered (or moot)."""
        try:
            message = parse_task(task.body)
        except MalformedTaskError as exc:
            log.error("saga worker: dropping a message that is not a task: %s", exc)
            await self._delete(task)
            return
        order_id = message.state.get("orderId")
        try:
            with work_span(f"saga {message.step}", message.state, order=str(order_id)):
                output = await self._run_step(message.step, message.state)
        except StepFailure as failure:
            answer = self._answers.fail(message.token, failure.error, failure.cause)
            outcome = f"failed with {failure.error}"
        else:
            answer = self._answers.succeed(message.token, json.dumps(output))
            outcome = "succeeded"
        try:
            waited = await answer
        except Exception as exc:
            # Not answered: the message comes back after its visibility timeout and the
            # step answers the same (it is recorded, or it failed and changed nothing).
            log.warning(
                "saga worker: %s of %s %s but the answer was not delivered (%s); "
                "left for a redelivery",
                message.step,
                order_id,
                outcome,
                exc,
            )
            return
        if not waited:
            log.info(
                "saga worker: %s of %s %s, but its execution no longer waited for it "
                "(the task timed out or the execution ended)",
                message.step,
                order_id,
                outcome,
            )
        await self._delete(task)

    async def _delete(self, task: QueuedTask) -> None:
        try:
            await self._queue.delete(task)
        except Exception as exc:
            # It comes back, answers the same again, and gets deleted then.
            log.warning("saga worker: could not delete a handled message: %s", exc)

    def _retry_delay(self, failures: int) -> float:
        ceiling = min(self._retry_max, self._retry_initial * 2 ** (failures - 1))
        return random.uniform(ceiling / 2, ceiling)


def _log_crash(handling: asyncio.Task[None]) -> None:
    """`handle` catches what a step can raise; what escapes it is a crash of the task (its
    message is redelivered). Retrieved here so asyncio does not report it as lost."""
    if handling.cancelled():
        return
    error = handling.exception()
    if error is not None:
        log.error("saga worker: a task crashed before answering: %r", error)


async def run_worker(
    queue: TaskQueue,
    answers: TaskAnswers,
    run_step: StepRunner,
    *,
    concurrency: int = 8,
) -> None:
    """The worker's entry point for the lifespan of `hemisphere serve` and for `hemisphere
    worker`: runs until cancelled."""
    await TaskWorker(queue, answers, run_step, concurrency=concurrency).run()
