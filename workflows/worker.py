"""The sagas' task worker: takes the task messages the state machines send, runs each step
and answers the state machine (the callback pattern of `sqs:sendMessage.waitForTaskToken`).
It is workflows.queue_worker's loop with the handler below.

A message is deleted only after its answer was delivered, or once an answer is moot (Step
Functions no longer waits for the token: the task timed out or the execution ended). A worker
that dies before answering leaves the message on the queue; it comes back after the queue's
visibility timeout, and the step, idempotent per (order, step), returns its recorded result.
So delivery is at least once and every step's effect is exactly once.

Up to `concurrency` steps run at once, with as many messages read ahead (a message never
waits long in one worker while another is idle, well within the visibility timeout), and a
slot that frees is filled at once. From the read-ahead, continuing steps run before new work
(a saga's first step: CreateOrder, BeginCancellation): a saga in flight is never starved by
sagas that have not started, and under load the new ones wait, not the half-done ones
(issue 9).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from domain.backoff import Backoff
from domain.saga import Step
from workflows.activities import StepFailure
from workflows.ports import StepResult, TaskAnswers, TaskQueue
from workflows.queue_worker import RECEIVE_BACKOFF, Outcome, QueueWorker
from workflows.tracing import work_span

log = logging.getLogger(__name__)

# (step, execution state) -> the step's result; raises StepFailure (Activities.run).
StepRunner = Callable[[str, Mapping[str, Any]], Awaitable[StepResult]]

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


class SagaTaskHandler:
    """The handler of one task message (workflows.queue_worker.Handler): runs the step and
    answers the state machine. A step that raises anything but StepFailure crashes the
    handler: unanswered, its message is redelivered."""

    def __init__(self, answers: TaskAnswers, run_step: StepRunner) -> None:
        self._answers = answers
        self._run_step = run_step

    async def handle(self, body: str) -> Outcome:
        try:
            message = parse_task(body)
        except MalformedTaskError as exc:
            log.error("saga worker: dropping a message that is not a task: %s", exc)
            return Outcome.DONE
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
            return Outcome.LEFT
        if not waited:
            log.info(
                "saga worker: %s of %s %s, but its execution no longer waited for it "
                "(the task timed out or the execution ended)",
                message.step,
                order_id,
                outcome,
            )
        return Outcome.DONE


def saga_worker(
    queue: TaskQueue,
    answers: TaskAnswers,
    run_step: StepRunner,
    *,
    concurrency: int = 8,
    backoff: Backoff = RECEIVE_BACKOFF,
) -> QueueWorker:
    """The sagas' worker: `concurrency` steps at once, as many read ahead, continuing steps
    first."""
    return QueueWorker(
        queue,
        SagaTaskHandler(answers, run_step).handle,
        name="saga worker",
        concurrency=concurrency,
        runs_first=continues_a_saga,
        backoff=backoff,
    )


def continues_a_saga(body: str) -> bool:
    """Whether a task message is a step of a saga under way (not a first step). A message
    that is not a task counts as continuing: its handler drops it at once."""
    return not is_new_work(body)


def is_new_work(body: str) -> bool:
    """Whether a task message is a saga's first step. (Parsed again by the handler: a task
    body is a few kilobytes, tens of microseconds.)"""
    try:
        step = json.loads(body).get("step")
    except (ValueError, AttributeError):
        return False
    return step in NEW_WORK_STEPS


async def run_worker(
    queue: TaskQueue,
    answers: TaskAnswers,
    run_step: StepRunner,
    *,
    concurrency: int = 8,
) -> None:
    """The worker's entry point for the lifespan of `hemisphere serve` and for `hemisphere
    worker`: runs until cancelled."""
    await saga_worker(queue, answers, run_step, concurrency=concurrency).run()
