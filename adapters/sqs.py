"""SQS: the aioboto3 client (failing fast like the DynamoDB one), queues created at start, and
the sagas' task queue (workflows.ports.TaskQueue).

The task queue's visibility timeout is its crash recovery: a message received by a worker that
dies before deleting it becomes visible again after that long, and another worker runs the
(idempotent) step again. It must outlast the slowest step, and stay below the state
machine's HeartbeatSeconds so the redelivery happens within the same task attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from botocore.config import Config
from botocore.exceptions import ClientError

from adapters.aws import (
    StaticCredentials,
    aws_client,
    client_config,
    error_code,
    translate_unavailable,
)
from domain.errors import BackendUnavailableError
from workflows.ports import QueuedTask

# aiobotocore's SQS client (no type stubs for SQS are installed).
SqsClient = Any

# The workers' long poll: an idle worker costs one request per this many seconds.
LONG_POLL_SECONDS: Final = 20
# SQS's most messages per receive and per DeleteMessageBatch.
_MAX_BATCH: Final = 10
# A task message that crashed this many workers goes to the dead-letter queue rather than
# crash more; its state machine's task then times out and is retried with a new message.
MAX_RECEIVES: Final = 5


class TaskQueueUnavailableError(BackendUnavailableError):
    """SQS could not be reached or refused for now."""


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    with translate_unavailable(what, TaskQueueUnavailableError):
        yield


@contextlib.asynccontextmanager
async def create_client(
    endpoint_url: str | None,
    region: str,
    credentials: StaticCredentials | None = None,
    *,
    config: Config | None = None,
) -> AsyncIterator[SqsClient]:
    """An SQS client for the `async with` block; its read timeout outlasts a long poll."""
    config = config or client_config(read_timeout=LONG_POLL_SECONDS + 10)
    async with aws_client("sqs", endpoint_url, region, credentials, config=config) as client:
        yield client


async def ensure_queue(
    sqs: SqsClient, name: str, attributes: Mapping[str, str] | None = None
) -> str:
    """The URL of queue `name`, created if missing, with `attributes` set either way (so a
    changed setting reaches a queue made by an earlier version). Safe at every start.
    Looked up before created: CreateQueue of an existing queue fails when its attributes
    differ from the ones given."""
    with translate_errors(f"SQS (queue {name})"):
        try:
            url = str((await sqs.get_queue_url(QueueName=name))["QueueUrl"])
        except ClientError as error:
            code = error_code(error)
            if "NonExistentQueue" not in code and "QueueDoesNotExist" not in code:
                raise
            url = str((await sqs.create_queue(QueueName=name))["QueueUrl"])
        if attributes:
            await sqs.set_queue_attributes(QueueUrl=url, Attributes=dict(attributes))
    return url


async def queue_arn(sqs: SqsClient, queue_url: str) -> str:
    with translate_errors(f"SQS (queue {queue_url})"):
        answer = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(answer["Attributes"]["QueueArn"])


async def ensure_task_queue(sqs: SqsClient, name: str, *, visibility_timeout: int) -> str:
    """The sagas' task queue and its dead-letter queue; returns the task queue's URL."""
    dead_letters = await ensure_queue(sqs, f"{name}-dlq", {"MessageRetentionPeriod": "1209600"})
    redrive = {
        "deadLetterTargetArn": await queue_arn(sqs, dead_letters),
        "maxReceiveCount": MAX_RECEIVES,
    }
    return await ensure_queue(
        sqs,
        name,
        {
            "VisibilityTimeout": str(visibility_timeout),
            "ReceiveMessageWaitTimeSeconds": str(LONG_POLL_SECONDS),
            "RedrivePolicy": json.dumps(redrive),
        },
    )


@dataclass(frozen=True, slots=True)
class SqsTask:
    body: str
    receipt: str
    message_id: str


class SqsTaskQueue:
    """workflows.ports.TaskQueue over one SQS queue (SqsTask is a workflows.ports.QueuedTask).

    Deletions are coalesced: those asked for within `delete_linger` seconds of the first
    (up to ten, SQS's limit) go in one DeleteMessageBatch, sent at once when ten wait. A
    worker deletes a message after every step it answered, so under load this is a request
    less per step for the endpoint; alone, a deletion waits `delete_linger` (the step's
    answer has gone already: the saga does not wait for it). Each `delete` still raises for
    its own message only."""

    def __init__(
        self,
        sqs: SqsClient,
        queue_url: str,
        *,
        wait_seconds: int = LONG_POLL_SECONDS,
        delete_linger: float = 0.01,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._wait_seconds = wait_seconds
        self._delete_linger = delete_linger
        self._deletions: list[tuple[str, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._batch_full = asyncio.Event()

    async def receive(self, max_messages: int) -> list[SqsTask]:
        with translate_errors(f"the task queue {self._queue_url}"):
            answer = await self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=max(1, min(_MAX_BATCH, max_messages)),
                WaitTimeSeconds=self._wait_seconds,
            )
        return [
            SqsTask(str(m["Body"]), str(m["ReceiptHandle"]), str(m["MessageId"]))
            for m in answer.get("Messages", [])
        ]

    async def delete(self, task: QueuedTask) -> None:
        deleted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Retrieved even when nobody awaits it any more (its worker was cancelled).
        deleted.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._deletions.append((task.receipt, deleted))
        if self._flushing is None:
            self._batch_full.clear()
            self._flushing = asyncio.create_task(self._flush(), name="sqs-delete-batch")
        if len(self._deletions) >= _MAX_BATCH:
            self._batch_full.set()
        # Shielded: a worker cancelled while it waits leaves the batch to the others.
        await asyncio.shield(deleted)

    async def _flush(self) -> None:
        try:
            # A full batch need not wait for more.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._delete_linger):
                    await self._batch_full.wait()
            while self._deletions:
                batch = self._deletions[:_MAX_BATCH]
                self._deletions = self._deletions[_MAX_BATCH:]
                await self._delete_batch(batch)
        finally:
            self._flushing = None

    async def _delete_batch(self, batch: list[tuple[str, asyncio.Future[None]]]) -> None:
        entries = [{"Id": str(n), "ReceiptHandle": receipt} for n, (receipt, _) in enumerate(batch)]
        try:
            with translate_errors(f"the task queue {self._queue_url}"):
                answer = await self._sqs.delete_message_batch(
                    QueueUrl=self._queue_url, Entries=entries
                )
        except Exception as error:
            for _, deleted in batch:
                if not deleted.done():
                    deleted.set_exception(error)
            return
        failed = {str(f.get("Id")): f for f in answer.get("Failed", [])}
        for n, (_, deleted) in enumerate(batch):
            if deleted.done():
                continue
            failure = failed.get(str(n))
            if failure is None:
                deleted.set_result(None)
            else:
                deleted.set_exception(
                    TaskQueueUnavailableError(
                        f"the task queue {self._queue_url} did not delete a message: "
                        f"{failure.get('Code')}: {failure.get('Message')}"
                    )
                )


_DEPTH_ATTRIBUTES: Final = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class SqsQueueDepth:
    """The messages of one or more queues, waiting, being worked on or delayed (one
    GetQueueAttributes each): workflows.admission's measure of the sagas in flight."""

    def __init__(self, sqs: SqsClient, *queue_urls: str) -> None:
        if not queue_urls:
            raise ValueError("SqsQueueDepth needs at least one queue")
        self._sqs = sqs
        self._queue_urls = queue_urls

    async def __call__(self) -> int:
        total = 0
        for url in self._queue_urls:
            with translate_errors(f"the task queue {url}"):
                answer = await self._sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=list(_DEPTH_ATTRIBUTES)
                )
            values = answer.get("Attributes", {})
            total += sum(int(values.get(name, 0)) for name in _DEPTH_ATTRIBUTES)
        return total
