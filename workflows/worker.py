"""The task worker: takes the sagas' task messages from the queue, runs each step and answers
the state machine (the callback pattern of `sqs:sendMessage.waitForTaskToken`).

A message is deleted only after its answer was delivered, or once an answer is moot (Step
Functions no longer waits for the token: the task timed out or the execution ended). A worker
that dies before answering leaves the message on the queue; it comes back after the queue's
visibility timeout, and the step, idempotent per (order, step), returns its recorded result.
So delivery is at least once and every step's effect is exactly once.

Messages are handled concurrently, up to `concurrency` at a time. The worker keeps a small
read-ahead of received messages (at most `concurrency` more than it runs, so a message never
waits long in one worker while another is idle, well within the visibility timeout) and the
next receive runs while steps do: one request fetches up to ten, and a slot that frees is
filled at once. From the read-ahead, continuing steps run before new work (a saga's first
step: CreateOrder, BeginCancellation): a saga in flight is never starved by sagas that have
not started, and under load the new ones wait, not the half-done ones (issue 9).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from domain.saga import Step
from workflows.activities import StepFailure
from workflows.ports import QueuedTask, StepResult, TaskAnswers, TaskQueue
from workflows.tracing import work_span

log = logging.getLogger(__name__)

# (step, execution state) -> the step's result; raises StepFailure (Activities.run).
StepRunner = Callable[[str, Mapping[str, Any]], Awaitable[StepResult]]

# SQS hands out at most 10 messages per receive.
_MAX_BATCH = 10
# A saga's first step: new work, run only when no continuing step waits in the read-ahead.
NEW_WORK_STEPS: Final = frozenset({Step.CREATE_ORDER, Step.BEGIN_CANCELLATION})


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
        cancelled too: unanswered (or never started), their messages come back to another
        worker after the visibility timeout."""
        in_flight: set[asyncio.Task[None]] = set()
        ahead = ReadAhead()
        receiving: asyncio.Task[Sequence[QueuedTask]] | None = None
        failures = 0
        try:
            while True:
                while ahead and len(in_flight) < self._concurrency:
                    handling = asyncio.create_task(self.handle(ahead.pop()), name="saga-task")
                    in_flight.add(handling)
                    handling.add_done_callback(in_flight.discard)
                    handling.add_done_callback(_log_crash)
                room = 2 * self._concurrency - len(in_flight) - len(ahead)
                if receiving is None and room > 0:
                    receiving = asyncio.create_task(
                        self._queue.receive(min(_MAX_BATCH, room)), name="saga-receive"
                    )
                waiting: set[asyncio.Future[Any]] = set(in_flight)
                if receiving is not None:
                    waiting.add(receiving)
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if receiving is None or not receiving.done():
                    continue
                done, receiving = receiving, None
                try:
                    ahead.extend(done.result())
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
                else:
                    failures = 0
        finally:
            pending = [*in_flight, *([receiving] if receiving is not None else [])]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

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


class ReadAhead:
    """Received messages not handled yet: continuing steps first, new work after, each in
    the order received. A message that is not a task counts as continuing (it is dropped at
    once by `handle`)."""

    def __init__(self) -> None:
        self._continuing: deque[QueuedTask] = deque()
        self._new: deque[QueuedTask] = deque()

    def __len__(self) -> int:
        return len(self._continuing) + len(self._new)

    def extend(self, tasks: Iterable[QueuedTask]) -> None:
        for task in tasks:
            (self._new if is_new_work(task.body) else self._continuing).append(task)

    def pop(self) -> QueuedTask:
        return self._continuing.popleft() if self._continuing else self._new.popleft()


def is_new_work(body: str) -> bool:
    """Whether a task message is a saga's first step. (Parsed again by `handle`: a task
    body is a few kilobytes, tens of microseconds.)"""
    try:
        step = json.loads(body).get("step")
    except (ValueError, AttributeError):
        return False
    return step in NEW_WORK_STEPS


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
