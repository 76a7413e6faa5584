"""The profile update worker (workflows.queue_worker's loop with the profile handler) against
in-memory fakes of its queue and store: one message at a time in the order received, ten
received at a time, malformed messages dropped, an unreachable store left for later with the
next receive backed off; over the SQS adapter, a batch's deletions share one request."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from adapters.eventbridge import DELETE_LINGER_SECONDS
from adapters.sqs import SqsTaskQueue
from domain.backoff import Backoff
from domain.commands import UpdateCustomerProfile
from domain.errors import BackendUnavailableError
from tests.support.task_queue import InMemoryTaskQueue, QueuedMessage, eventually
from workflows.ports import ProfileStore, TaskQueue
from workflows.profile_updates import profile_update_worker


def update_body(customer_id: str, key: str, name: str = "Ada") -> str:
    detail = {"requestId": f"pu-{key}", "customerId": customer_id, "idempotencyKey": key}
    return json.dumps(
        {"detail-type": "CustomerProfileUpdateRequested", "detail": detail | {"name": name}}
    )


class Store:
    """workflows.ports.ProfileStore that records what it applied; `down` makes the next
    calls fail as an unreachable PostgreSQL does."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.down = 0
        self.running = 0
        self.most_at_once = 0
        self.delay = 0.0

    async def apply_profile_update(self, request_id: str, command: UpdateCustomerProfile) -> str:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.delay)
            if self.down:
                self.down -= 1
                raise BackendUnavailableError("PostgreSQL is down")
            self.applied.append(command.idempotency_key)
            return "applied"
        finally:
            self.running -= 1


class RecordingQueue(InMemoryTaskQueue):
    """Also records when each receive was asked for, and for how many."""

    def __init__(self) -> None:
        super().__init__()
        self.receives: list[tuple[float, int]] = []
        self.on_receive: list[int] = []  # len(store.applied) at each receive, when watched
        self.store: Store | None = None

    async def receive(self, max_messages: int) -> list[QueuedMessage]:
        self.receives.append((asyncio.get_running_loop().time(), max_messages))
        if self.store is not None:
            self.on_receive.append(len(self.store.applied))
        return await super().receive(max_messages)


QUICK_RETRIES = Backoff(0.01, 0.02)


@contextlib.asynccontextmanager
async def working(
    queue: TaskQueue, store: ProfileStore, backoff: Backoff = QUICK_RETRIES
) -> AsyncIterator[None]:
    worker = asyncio.create_task(profile_update_worker(queue, store, backoff=backoff).run())
    try:
        yield
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


async def test_updates_apply_one_at_a_time_in_the_order_received() -> None:
    queue, store = RecordingQueue(), Store()
    store.delay = 0.005
    keys = [f"k-{n:02}" for n in range(15)]
    for key in keys:
        queue.put(update_body("c-0001", key))
    queue.store = store

    async with working(queue, store):
        await eventually(lambda: len(queue.deleted) == 15)

    assert store.applied == keys and store.most_at_once == 1
    # Ten at a time; the next ten once the ten in hand are handled (as one SQS batch).
    assert [n for _, n in queue.receives[:2]] == [10, 10]
    assert queue.on_receive[:2] == [0, 10]


async def test_a_malformed_message_is_dropped_without_reaching_the_store() -> None:
    queue, store = InMemoryTaskQueue(), Store()
    queue.put("not an event")
    queue.put(json.dumps({"detail": {"customerId": 3}}))
    queue.put(update_body("c-0001", "k-1"))

    async with working(queue, store):
        await eventually(lambda: len(queue.deleted) == 3)

    assert store.applied == ["k-1"] and not queue.in_flight


async def test_an_unreachable_store_leaves_the_message_and_backs_off() -> None:
    queue, store = RecordingQueue(), Store()
    store.down = 1
    queue.put(update_body("c-0001", "k-1"))

    # The jitter at its top: the round after the outage waits the whole first ceiling.
    async with working(queue, store, Backoff(0.2, 1.0, random=lambda: 1.0)):
        await eventually(lambda: len(queue.receives) == 2)
        assert store.applied == [] and queue.deleted == [] and len(queue.in_flight) == 1
        queue.redeliver()  # its visibility timeout passed
        await eventually(lambda: len(queue.deleted) == 1)

    assert store.applied == ["k-1"]
    (first, _), (second, _) = queue.receives[:2]
    assert second - first >= 0.2


class FakeSqs:
    """An aiobotocore SQS client with one batch of messages waiting; records deletions."""

    def __init__(self, bodies: list[str]) -> None:
        self.waiting = [
            {"Body": body, "ReceiptHandle": f"r-{n}", "MessageId": f"m-{n}"}
            for n, body in enumerate(bodies)
        ]
        self.deletions: list[list[str]] = []

    async def receive_message(self, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        if not self.waiting:
            await asyncio.sleep(3600)  # a long poll on an empty queue
        taken = self.waiting[:MaxNumberOfMessages]
        del self.waiting[:MaxNumberOfMessages]
        return {"Messages": taken}

    async def delete_message_batch(self, Entries: list[dict[str, str]], **_: Any) -> Any:
        self.deletions.append([entry["ReceiptHandle"] for entry in Entries])
        return {}


async def test_over_sqs_the_deletions_of_a_batch_share_one_request() -> None:
    sqs, store = FakeSqs([update_body("c-0001", f"k-{n}") for n in range(10)]), Store()
    store.delay = 0.03  # the ten take longer than a short linger

    # As hemisphere.write_path wires it.
    async with working(SqsTaskQueue(sqs, "q", delete_linger=DELETE_LINGER_SECONDS), store):
        await eventually(lambda: bool(sqs.deletions))
        await asyncio.sleep(0.05)

    assert len(store.applied) == 10
    assert sqs.deletions == [[f"r-{n}" for n in range(10)]]
