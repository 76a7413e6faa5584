"""The task worker against in-memory fakes of the queue and of Step Functions' answers: a
message is deleted only once answered (or once the answer is moot); a crash or an outage
leaves it for a redelivery; concurrency is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from domain.backoff import Backoff
from domain.errors import BackendUnavailableError
from tests.support.saga_engine import Crash
from tests.support.task_queue import InMemoryTaskQueue, RecordingAnswers, eventually, task_body
from workflows.activities import StepFailure
from workflows.worker import MalformedTaskError, is_new_work, parse_task, saga_worker


class Steps:
    """A step runner that records its calls; `script` says what each token's step does."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.script: dict[str, BaseException] = {}
        self.running = 0
        self.most_at_once = 0
        self.delay = 0.0

    async def __call__(self, step: str, state: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(step)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.delay)
            error = self.script.pop(str(state["orderId"]), None)
            if error is not None:
                raise error
            return {"done": step}
        finally:
            self.running -= 1


@contextlib.asynccontextmanager
async def working(
    queue: InMemoryTaskQueue, answers: RecordingAnswers, steps: Steps, concurrency: int = 4
) -> AsyncIterator[None]:
    worker = asyncio.create_task(saga_worker(queue, answers, steps, concurrency=concurrency).run())
    try:
        yield
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


@pytest.fixture
def queue() -> InMemoryTaskQueue:
    return InMemoryTaskQueue()


@pytest.fixture
def answers() -> RecordingAnswers:
    return RecordingAnswers()


@pytest.fixture
def steps() -> Steps:
    return Steps()


def test_a_task_message_is_parsed_or_refused() -> None:
    message = parse_task(task_body("ReserveInventory", {"orderId": "o-1"}, "tok"))
    assert (message.step, message.state, message.token) == (
        "ReserveInventory",
        {"orderId": "o-1"},
        "tok",
    )
    for body in (
        "not json",
        "[]",
        json.dumps({"step": "X", "input": {}}),
        json.dumps({"step": "X", "input": 3, "taskToken": "t"}),
    ):
        with pytest.raises(MalformedTaskError):
            parse_task(body)


async def test_a_step_is_answered_then_its_message_deleted(
    queue: InMemoryTaskQueue, answers: RecordingAnswers, steps: Steps
) -> None:
    queue.put(task_body("ReserveInventory", {"orderId": "o-1"}, "t1"))
    steps.script["o-2"] = StepFailure("Inventory.Insufficient", "no stock")
    queue.put(task_body("ReserveInventory", {"orderId": "o-2"}, "t2"))
    async with working(queue, answers, steps):
        await eventually(lambda: len(queue.deleted) == 2)
    assert sorted(answers.answers) == [
        ("t1", "success", json.dumps({"done": "ReserveInventory"})),
        ("t2", "failure", "Inventory.Insufficient"),
    ]
    assert not queue.in_flight and not queue.visible


async def test_an_answer_nobody_waits_for_is_dropped_with_its_message(
    queue: InMemoryTaskQueue, answers: RecordingAnswers, steps: Steps
) -> None:
    answers.moot.add("t1")  # the task timed out, or the execution ended
    queue.put(task_body("CapturePayment", {"orderId": "o-1"}, "t1"))
    async with working(queue, answers, steps):
        await eventually(lambda: len(queue.deleted) == 1)
    assert answers.answers[0][:2] == ("t1", "success")


async def test_a_crash_before_answering_leaves_the_message_for_a_redelivery(
    queue: InMemoryTaskQueue, answers: RecordingAnswers, steps: Steps
) -> None:
    steps.script["o-1"] = Crash()
    queue.put(task_body("CapturePayment", {"orderId": "o-1"}, "t1"))
    async with working(queue, answers, steps):
        await eventually(lambda: steps.calls == ["CapturePayment"] and steps.running == 0)
        await asyncio.sleep(0.02)
        assert answers.answers == [] and queue.deleted == []
        assert len(queue.in_flight) == 1  # invisible until its visibility timeout
        queue.redeliver()
        await eventually(lambda: len(queue.deleted) == 1)
    assert [a[:2] for a in answers.answers] == [("t1", "success")]
    assert steps.calls == ["CapturePayment", "CapturePayment"]


async def test_an_answer_that_cannot_be_delivered_leaves_the_message(
    queue: InMemoryTaskQueue, answers: RecordingAnswers, steps: Steps
) -> None:
    answers.unreachable = BackendUnavailableError("Step Functions is down")
    queue.put(task_body("ConfirmOrder", {"orderId": "o-1"}, "t1"))
    async with working(queue, answers, steps):
        await eventually(lambda: steps.calls == ["ConfirmOrder"] and steps.running == 0)
        await asyncio.sleep(0.02)
        assert queue.deleted == [] and len(queue.in_flight) == 1
        answers.unreachable = None
        queue.redeliver()
        await eventually(lambda: len(queue.deleted) == 1)
    assert [a[:2] for a in answers.answers] == [("t1", "success")]


async def test_a_message_that_is_no_task_is_dropped_unanswered(
    queue: InMemoryTaskQueue, answers: RecordingAnswers, steps: Steps
) -> None:
    queue.put("{}")
    async with working(queue, answers, steps):
        await eventually(lambda: len(queue.deleted) == 1)
    assert answers.answers == [] and steps.calls == []


async def test_concurrency_is_bounded_and_stopping_leaves_tasks_in_hand(
    queue: InMemoryTaskQueue, answers: RecordingAnswers, steps: Steps
) -> None:
    steps.delay = 0.05
    for n in range(7):
        queue.put(task_body("ReserveInventory", {"orderId": f"o-{n}"}, f"t{n}"))
    async with working(queue, answers, steps, concurrency=3):
        await eventually(lambda: len(queue.deleted) == 7)
        assert steps.most_at_once == 3
        steps.delay = 10
        queue.put(task_body("ReserveInventory", {"orderId": "o-late"}, "t-late"))
        await eventually(lambda: steps.running == 1)
    # Stopped while running it: unanswered, its message comes back to another worker.
    assert len(queue.in_flight) == 1 and len(answers.answers) == 7


async def test_receiving_failures_are_retried_with_backoff(
    answers: RecordingAnswers, steps: Steps
) -> None:
    class FlakyQueue(InMemoryTaskQueue):
        failures = 2

        async def receive(self, max_messages: int) -> Any:
            if self.failures:
                self.failures -= 1
                raise BackendUnavailableError("SQS is down")
            return await super().receive(max_messages)

    queue = FlakyQueue()
    queue.put(task_body("CreateOrder", {"orderId": "o-1"}, "t1"))
    worker = saga_worker(queue, answers, steps, backoff=Backoff(0.01, 0.02))
    running = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: len(queue.deleted) == 1)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert queue.failures == 0


async def test_continuing_steps_run_before_new_sagas(
    queue: InMemoryTaskQueue, answers: RecordingAnswers, steps: Steps
) -> None:
    """New work (a saga's first step) waits in the read-ahead while a started saga's step
    waits with it: the started sagas finish first under load (no starvation)."""
    steps.delay = 0.02
    queue.put(task_body("CreateOrder", {"orderId": "o-new-1"}, "t1"))
    queue.put(task_body("CreateOrder", {"orderId": "o-new-2"}, "t2"))
    queue.put(task_body("ReserveInventory", {"orderId": "o-old-1"}, "t3"))
    queue.put(task_body("BeginCancellation", {"orderId": "o-new-3"}, "t4"))
    queue.put(task_body("RefundPayment", {"orderId": "o-old-2"}, "t5"))
    async with working(queue, answers, steps, concurrency=3):  # reads all five ahead
        await eventually(lambda: len(queue.deleted) == 5)
    assert steps.calls[:2] == ["ReserveInventory", "RefundPayment"]
    assert sorted(steps.calls[2:]) == ["BeginCancellation", "CreateOrder", "CreateOrder"]


async def test_the_read_ahead_is_bounded_by_the_concurrency(
    queue: InMemoryTaskQueue, answers: RecordingAnswers, steps: Steps
) -> None:
    steps.delay = 10
    for n in range(20):
        queue.put(task_body("ReserveInventory", {"orderId": f"o-{n}"}, f"t{n}"))
    async with working(queue, answers, steps, concurrency=3):
        await eventually(lambda: steps.running == 3)
        await asyncio.sleep(0.05)
        # Three running and three read ahead: the other fourteen stay in the queue for
        # other workers.
        assert len(queue.in_flight) == 6 and len(queue.visible) == 14


def test_new_work_is_a_sagas_first_step() -> None:
    assert is_new_work(task_body("CreateOrder", {}, "t"))
    assert is_new_work(task_body("BeginCancellation", {}, "t"))
    assert not is_new_work(task_body("ConfirmOrder", {}, "t"))
    assert not is_new_work("not json") and not is_new_work("[1]")
