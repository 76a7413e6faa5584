"""The Step Functions and SQS adapters' own logic against a fake client: substitution of the
definition's placeholders, which answers are moot, how a retried or conflicting start is told
apart, which orders have a running execution, and how outages are named."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from adapters.sqs import SqsTask, SqsTaskQueue, TaskQueueUnavailableError
from adapters.stepfunctions import (
    SagaMachines,
    StepFunctionsOrderWorkflows,
    StepFunctionsSagaEngine,
    StepFunctionsTaskAnswers,
    WorkflowEngineUnavailableError,
    substitute,
)
from domain.commands import Checkout, CheckoutLine
from domain.errors import IdempotencyConflictError, ReadOnlyRegionError
from domain.saga import checkout_input
from tests.support.routing import from_secondary

MACHINES = SagaMachines(
    "arn:aws:states:us-east-1:123456789012:stateMachine:h-checkout",
    "arn:aws:states:us-east-1:123456789012:stateMachine:h-cancel",
    "http://127.0.0.1:1/123456789012/h-saga-tasks",
)
COMMAND = Checkout("c-0001", (CheckoutLine("p-0001", 2),), "tok_visa", "key-1")


def client_error(code: str, operation: str = "Op") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class FakeSfn:
    """Answers from `answers` (operation -> value, or an exception to raise); records calls."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, operation: str) -> Any:
        async def call(**kwargs: Any) -> Any:
            self.calls.append((operation, kwargs))
            answer = self.answers.get(operation, {})
            if isinstance(answer, list):  # successive pages
                answer = answer.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        return call


def test_the_queue_url_is_substituted_as_a_json_string() -> None:
    template = json.dumps({"QueueUrl": "${TaskQueueUrl}", "Other": "$.x"})
    assert json.loads(substitute(template, {"TaskQueueUrl": 'http://q/"odd"'})) == {
        "QueueUrl": 'http://q/"odd"',
        "Other": "$.x",
    }
    with pytest.raises(ValueError, match="TaskQueueUrl"):
        substitute(template, {})


def test_a_secondary_starts_sagas_on_the_primarys_machines() -> None:
    primary = MACHINES.in_region("eu-west-1")
    assert primary.checkout_arn == "arn:aws:states:eu-west-1:123456789012:stateMachine:h-checkout"
    assert primary.cancel_arn.split(":")[3] == "eu-west-1"


async def test_a_start_that_exists_with_the_same_request_is_fine() -> None:
    placed_elsewhere = checkout_input(COMMAND, "ap-southeast-2")
    sfn = FakeSfn(
        start_execution=client_error("ExecutionAlreadyExists"),
        describe_execution={"input": placed_elsewhere},
    )
    await StepFunctionsOrderWorkflows(sfn, MACHINES).start_checkout(COMMAND, "us-east-1")
    [start, describe] = sfn.calls
    assert (
        start[1]["name"].startswith("checkout-o-")
        and start[1]["name"] in describe[1]["executionArn"]
    )
    assert describe[1]["executionArn"].startswith(
        "arn:aws:states:us-east-1:123456789012:execution:h-checkout:"
    )


async def test_a_start_that_exists_with_another_request_is_a_conflict() -> None:
    other = Checkout("c-0001", (CheckoutLine("p-0001", 3),), "tok_visa", "key-1")
    sfn = FakeSfn(
        start_execution=client_error("ExecutionAlreadyExists"),
        describe_execution={"input": checkout_input(other, "us-east-1")},
    )
    with pytest.raises(IdempotencyConflictError):
        await StepFunctionsOrderWorkflows(sfn, MACHINES).start_checkout(COMMAND, "us-east-1")


async def test_an_outage_is_a_backend_outage_and_reads_as_read_only_from_a_secondary() -> None:
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    with pytest.raises(WorkflowEngineUnavailableError):
        await StepFunctionsOrderWorkflows(FakeSfn(start_execution=down), MACHINES).start_checkout(
            COMMAND, "us-east-1"
        )
    # A secondary wraps it in the routing's guard: the primary is down, this region is
    # read-only.
    remote = from_secondary(
        StepFunctionsOrderWorkflows(FakeSfn(start_execution=down), MACHINES.in_region("eu-west-1")),
        region="us-east-1",
        primary_region="eu-west-1",
    )
    with pytest.raises(ReadOnlyRegionError):
        await remote.start_checkout(COMMAND, "us-east-1")
    # A refusal that is no outage passes as it is.
    refused = FakeSfn(start_execution=client_error("StateMachineDoesNotExist"))
    with pytest.raises(ClientError):
        await StepFunctionsOrderWorkflows(refused, MACHINES).start_checkout(COMMAND, "us-east-1")


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
async def test_an_answer_nobody_waits_for_is_moot(code: str) -> None:
    answers = StepFunctionsTaskAnswers(FakeSfn(send_task_success=client_error(code)))
    assert await answers.succeed("token", "{}") is False
    answers = StepFunctionsTaskAnswers(FakeSfn(send_task_failure=client_error(code)))
    assert await answers.fail("token", "Payment.Declined", "no") is False


async def test_answers_that_arrive_are_true_and_outages_raise() -> None:
    sfn = FakeSfn()
    assert await StepFunctionsTaskAnswers(sfn).fail("t", "Payment.Declined", "no") is True
    assert sfn.calls == [
        ("send_task_failure", {"taskToken": "t", "error": "Payment.Declined", "cause": "no"})
    ]
    down = FakeSfn(send_task_success=client_error("ServiceUnavailable"))
    with pytest.raises(WorkflowEngineUnavailableError):
        await StepFunctionsTaskAnswers(down).succeed("t", "{}")


async def test_running_orders_come_from_every_page_of_both_machines() -> None:
    names = [
        ["checkout-o-aa11", "checkout-o-bb22-r3"],  # the checkout machine, page 1
        ["something-else"],  # page 2
        ["cancel-o-cc33-0123456789ab", "cancel-o-dd44-0123456789ab-r1"],  # the cancel machine
    ]
    pages = [{"executions": [{"name": name} for name in page]} for page in names]
    pages[0]["nextToken"] = "n"
    engine = StepFunctionsSagaEngine(FakeSfn(list_executions=pages), MACHINES)
    assert await engine.running_order_ids() == {"o-aa11", "o-bb22", "o-cc33", "o-dd44"}


async def test_starting_a_rerun_that_exists_leaves_it_alone() -> None:
    sfn = FakeSfn(start_execution=client_error("ExecutionAlreadyExists"))
    await StepFunctionsSagaEngine(sfn, MACHINES).start("cancel", "cancel-o-1-x-r1", "{}")
    assert sfn.calls[0][1]["stateMachineArn"] == MACHINES.cancel_arn


async def test_the_task_queue_long_polls_and_names_its_outages() -> None:
    message = {"Body": "{}", "ReceiptHandle": "r1", "MessageId": "m1"}
    sqs = FakeSfn(receive_message={"Messages": [message]})
    queue = SqsTaskQueue(sqs, MACHINES.queue_url, wait_seconds=7)
    assert await queue.receive(25) == [SqsTask("{}", "r1", "m1")]
    await queue.delete(SqsTask("{}", "r1", "m1"))
    assert sqs.calls[0][1]["MaxNumberOfMessages"] == 10 and sqs.calls[0][1]["WaitTimeSeconds"] == 7
    assert sqs.calls[1] == (
        "delete_message_batch",
        {"QueueUrl": MACHINES.queue_url, "Entries": [{"Id": "0", "ReceiptHandle": "r1"}]},
    )
    down = SqsTaskQueue(FakeSfn(receive_message=client_error("ServiceUnavailable")), "q")
    with pytest.raises(TaskQueueUnavailableError):
        await down.receive(1)


async def test_deletions_close_together_go_in_batches_of_ten_and_fail_alone() -> None:
    failed = {"Failed": [{"Id": "1", "Code": "ReceiptHandleIsInvalid", "Message": "gone"}]}
    sqs = FakeSfn(delete_message_batch=[failed, {}])
    queue = SqsTaskQueue(sqs, MACHINES.queue_url, delete_linger=0.01)
    tasks = [SqsTask("{}", f"r{n}", f"m{n}") for n in range(12)]
    results = await asyncio.gather(*(queue.delete(t) for t in tasks), return_exceptions=True)
    assert [call[0] for call in sqs.calls] == ["delete_message_batch"] * 2
    assert [len(call[1]["Entries"]) for call in sqs.calls] == [10, 2]
    assert isinstance(results[1], TaskQueueUnavailableError) and "gone" in str(results[1])
    assert [r for n, r in enumerate(results) if n != 1] == [None] * 11

    down = SqsTaskQueue(FakeSfn(delete_message_batch=client_error("ServiceUnavailable")), "q")
    with pytest.raises(TaskQueueUnavailableError):
        await down.delete(tasks[0])


async def test_ten_deletions_go_at_once_however_long_the_linger() -> None:
    sqs = FakeSfn()
    queue = SqsTaskQueue(sqs, MACHINES.queue_url, delete_linger=60)
    tasks = [SqsTask("{}", f"r{n}", f"m{n}") for n in range(10)]
    async with asyncio.timeout(1):
        await asyncio.gather(*(queue.delete(t) for t in tasks))
    assert [len(call[1]["Entries"]) for call in sqs.calls] == [10]
