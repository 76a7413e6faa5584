"""updateCustomerProfile's path on real backends: the adapter puts the request on an
EventBridge bus (the local AWS endpoint), a rule delivers it to SQS, the worker applies it to
PostgreSQL once, with the customer's and orders' events in the outbox."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from adapters.dynamodb.client import StaticCredentials
from adapters.eventbridge import (
    MAX_RECEIVES,
    RULE_NAME,
    EventBridgeProfileUpdates,
    EventBusUnavailableError,
    create_client,
    ensure_profile_update_route,
    profile_update_request_id,
)
from adapters.postgres import repositories
from adapters.postgres.outbox import PostgresOutbox
from adapters.postgres.pool import create_pool
from adapters.postgres.profiles import PostgresProfileStore, ProfileUpdateOutcome
from adapters.sqs import SqsTaskQueue
from domain.commands import UpdateCustomerProfile
from domain.errors import BackendUnavailableError
from domain.events import CustomerChanged, Event, OrderChanged
from domain.model import Money, OrderStatus
from hemisphere.localstack import free_port
from workflows.profile_updates import run_profile_update_worker

pytestmark = pytest.mark.integration

LOCAL = StaticCredentials("hemisphere-local", "hemisphere-local")
REGION = "us-east-1"


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(pg_dsn, min_size=1, max_size=4)
    async with pool.acquire() as conn, conn.transaction():
        await repositories.upsert_customer(
            conn, "c-0001", "Ada Lovelace", "ada@example.com", "eu-west-1", loyalty_points=42
        )
        await repositories.upsert_product(
            conn, "p-0001", "SKU-1", "Notebook", None, "books", Money(500, "EUR"), 10
        )
        await repositories.insert_order(
            conn, "o-0001", "c-0001", [("p-0001", 2)], OrderStatus.CONFIRMED, REGION, "k-o1"
        )
        await conn.execute("UPDATE outbox SET published_at = now()")  # the seed is old news
    yield pool
    await pool.close()


@pytest.fixture
async def aws(aws_endpoint: str) -> AsyncIterator[tuple[Any, Any]]:
    async with (
        create_client("events", aws_endpoint, REGION, LOCAL) as events,
        create_client("sqs", aws_endpoint, REGION, LOCAL) as sqs,
    ):
        yield events, sqs


@pytest.fixture
async def route(aws: tuple[Any, Any]) -> tuple[str, str]:
    """(bus name, queue URL) of this test's own."""
    events, sqs = aws
    suffix = uuid.uuid4().hex[:10]
    bus = f"hemisphere-test-{suffix}"
    return bus, await ensure_profile_update_route(events, sqs, bus, f"profile-updates-{suffix}")


@asynccontextmanager
async def running_worker(sqs: Any, queue_url: str, store: Any) -> AsyncIterator[None]:
    queue = SqsTaskQueue(sqs, queue_url, wait_seconds=1)
    task = asyncio.create_task(run_profile_update_worker(queue, store))
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> float:
    """Seconds until `check()` holds; fails the test after `within`."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, "not within the time allowed"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def unpublished(pool: asyncpg.Pool[Any]) -> list[Event]:
    """Drain the outbox into a list: the events a projection would receive."""
    box = PostgresOutbox(pool, "unused")
    seen: list[Event] = []

    async def collect(events: Sequence[Event]) -> None:
        seen.extend(events)

    while await box.drain(collect, 100):
        pass
    return seen


async def request_rows(pool: asyncpg.Pool[Any]) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM profile_update_requests ORDER BY received_at")


async def queue_is_empty(sqs: Any, queue_url: str) -> bool:
    answer = await sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    return all(value == "0" for value in answer["Attributes"].values())


async def test_a_profile_update_reaches_the_projection_within_a_second(
    aws: tuple[Any, Any], route: tuple[str, str], pool: asyncpg.Pool[Any], pg_dsn: str
) -> None:
    events, sqs = aws
    bus, queue_url = route
    projection: dict[str, Any] = {}

    async def project() -> bool:
        for event in await unpublished(pool):
            match event:
                case CustomerChanged(customer=c):
                    projection[c.id] = c
                case OrderChanged(order=o):
                    projection[o.id] = o
        customer = projection.get("c-0001")
        return customer is not None and customer.name == "Ada King"

    async with running_worker(sqs, queue_url, PostgresProfileStore(pool, pg_dsn)):
        started = time.monotonic()
        request_id, accepted_at = await EventBridgeProfileUpdates(events, bus).submit(
            UpdateCustomerProfile("c-0001", "Ada King", None, "rename-1")
        )
        await eventually(project, within=5.0)
        latency = time.monotonic() - started

    assert latency < 1.0, f"took {latency:.2f}s"
    assert request_id == profile_update_request_id("c-0001", "rename-1")
    assert accepted_at.tzinfo is not None
    customer = projection["c-0001"]
    assert (customer.email, customer.loyalty_points, customer.version) == (
        "ada@example.com",
        42,  # points are kept
        2,
    )
    # The order shows its customer's name, so the rename gave it a new version too.
    assert projection["o-0001"].customer_name == "Ada King"
    [row] = await request_rows(pool)
    assert (row["request_id"], row["status"], row["name"], row["email"]) == (
        request_id,
        "APPLIED",
        "Ada King",
        None,
    )
    await eventually(lambda: queue_is_empty(sqs, queue_url))


async def test_the_same_key_twice_applies_once(
    aws: tuple[Any, Any], route: tuple[str, str], pool: asyncpg.Pool[Any], pg_dsn: str
) -> None:
    events, sqs = aws
    bus, queue_url = route
    updates = EventBridgeProfileUpdates(events, bus)
    command = UpdateCustomerProfile("c-0001", None, "ada@king.example", "email-1")

    first, _ = await updates.submit(command)
    second, _ = await updates.submit(command)
    # …and a third with the same key but another change: the first one stands.
    await updates.submit(UpdateCustomerProfile("c-0001", None, "other@example.com", "email-1"))
    assert first == second

    async with running_worker(sqs, queue_url, PostgresProfileStore(pool, pg_dsn)):
        await eventually(lambda: queue_is_empty(sqs, queue_url))

    customer = await pool.fetchrow("SELECT email, version FROM customers WHERE id = 'c-0001'")
    assert (customer["email"], customer["version"]) == ("ada@king.example", 2)
    events_out = await unpublished(pool)
    # An email change leaves the orders alone: one event, the customer's.
    assert [
        (type(e).__name__, e.customer.email) for e in events_out if isinstance(e, CustomerChanged)
    ] == [("CustomerChanged", "ada@king.example")]
    assert not [e for e in events_out if isinstance(e, OrderChanged)]
    assert len(await request_rows(pool)) == 1


async def test_store_outcomes_for_repeats_conflicts_and_unknown_customers(
    pool: asyncpg.Pool[Any], pg_dsn: str
) -> None:
    store = PostgresProfileStore(pool, pg_dsn)
    rename = UpdateCustomerProfile("c-0001", "Ada K.", None, "k-1")
    ghost = UpdateCustomerProfile("c-9999", "Nobody", None, "k-1")
    bad_email = UpdateCustomerProfile("c-0001", None, "not-an-email", "k-2")

    async def apply(command: UpdateCustomerProfile) -> str:
        request_id = profile_update_request_id(command.customer_id, command.idempotency_key)
        return await store.apply_profile_update(request_id, command)

    assert await apply(rename) == ProfileUpdateOutcome.APPLIED
    assert await apply(rename) == ProfileUpdateOutcome.DUPLICATE
    assert (
        await apply(UpdateCustomerProfile("c-0001", "Someone else", None, "k-1"))
        == ProfileUpdateOutcome.CONFLICT
    )
    assert await apply(ghost) == ProfileUpdateOutcome.REJECTED
    assert await apply(ghost) == ProfileUpdateOutcome.DUPLICATE
    assert await apply(bad_email) == ProfileUpdateOutcome.REJECTED

    rows = {(r["customer_id"], r["idempotency_key"]): r for r in await request_rows(pool)}
    assert rows["c-9999", "k-1"]["status"] == "REJECTED"
    assert "not found" in rows["c-9999", "k-1"]["reason"]
    assert rows["c-0001", "k-2"]["status"] == "REJECTED"
    customer = await pool.fetchrow("SELECT name, email, version FROM customers WHERE id = 'c-0001'")
    assert tuple(customer) == ("Ada K.", "ada@example.com", 2)
    assert [type(e).__name__ for e in await unpublished(pool)] == [
        "CustomerChanged",
        "OrderChanged",
    ]


async def test_concurrent_deliveries_of_one_request_apply_once(
    pool: asyncpg.Pool[Any], pg_dsn: str
) -> None:
    store = PostgresProfileStore(pool, pg_dsn)
    command = UpdateCustomerProfile("c-0001", "Ada Twice", None, "k-race")
    request_id = profile_update_request_id("c-0001", "k-race")

    outcomes = await asyncio.gather(
        *(store.apply_profile_update(request_id, command) for _ in range(4))
    )

    assert sorted(outcomes) == ["applied", "duplicate", "duplicate", "duplicate"]
    assert await pool.fetchval("SELECT version FROM customers WHERE id = 'c-0001'") == 2


async def test_malformed_and_unknown_customer_messages_are_deleted(
    aws: tuple[Any, Any], route: tuple[str, str], pool: asyncpg.Pool[Any], pg_dsn: str
) -> None:
    events, sqs = aws
    bus, queue_url = route
    await sqs.send_message(QueueUrl=queue_url, MessageBody="not an event")
    await sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"detail": {"x": 1}}))
    await EventBridgeProfileUpdates(events, bus).submit(
        UpdateCustomerProfile("c-4040", "Ghost", None, "k-ghost")
    )

    # Each deleted at its first delivery: the queue's visibility timeout (30 s) would keep
    # any that were not from coming back within the test.
    async with running_worker(sqs, queue_url, PostgresProfileStore(pool, pg_dsn)):
        await eventually(lambda: queue_is_empty(sqs, queue_url))

    [row] = await request_rows(pool)
    assert (row["customer_id"], row["status"]) == ("c-4040", "REJECTED")


class FlakyStore:
    """Unreachable for the first `outages` calls, then the real store."""

    def __init__(self, inner: PostgresProfileStore, outages: int) -> None:
        self.inner = inner
        self.outages = outages

    async def apply_profile_update(self, request_id: str, command: UpdateCustomerProfile) -> str:
        if self.outages:
            self.outages -= 1
            raise BackendUnavailableError("PostgreSQL is down")
        return await self.inner.apply_profile_update(request_id, command)


async def test_a_request_the_store_cannot_take_now_comes_back(
    aws: tuple[Any, Any], route: tuple[str, str], pool: asyncpg.Pool[Any], pg_dsn: str
) -> None:
    events, sqs = aws
    bus, queue_url = route
    # The deployment's 30 s would make this test slow: the message returns after 1 s.
    await sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "1"})
    await EventBridgeProfileUpdates(events, bus).submit(
        UpdateCustomerProfile("c-0001", "Ada Later", None, "k-later")
    )
    store = FlakyStore(PostgresProfileStore(pool, pg_dsn), outages=1)

    async with running_worker(sqs, queue_url, store):
        await eventually(lambda: request_rows_exist(pool), within=8.0)
        await eventually(lambda: queue_is_empty(sqs, queue_url))

    assert store.outages == 0  # the first delivery met the outage and was left
    assert await pool.fetchval("SELECT name FROM customers WHERE id = 'c-0001'") == "Ada Later"


async def request_rows_exist(pool: asyncpg.Pool[Any]) -> bool:
    return bool(await request_rows(pool))


async def test_the_route_is_created_once_however_often_it_is_ensured(
    aws: tuple[Any, Any], route: tuple[str, str]
) -> None:
    events, sqs = aws
    bus, queue_url = route
    queue_name = queue_url.rsplit("/", 1)[1]

    assert await ensure_profile_update_route(events, sqs, bus, queue_name) == queue_url

    targets = (await events.list_targets_by_rule(Rule=RULE_NAME, EventBusName=bus))["Targets"]
    assert [t["Arn"].rsplit(":", 1)[1] for t in targets] == [queue_name]
    attributes = (
        await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f":{queue_name}-dlq")
    assert int(redrive["maxReceiveCount"]) == MAX_RECEIVES


async def test_an_unreachable_or_missing_bus_is_unavailable(aws: tuple[Any, Any]) -> None:
    events, _ = aws
    command = UpdateCustomerProfile("c-0001", "Ada", None, "k-1")
    with pytest.raises(EventBusUnavailableError) as raised:
        await EventBridgeProfileUpdates(events, "no-such-bus").submit(command)
    assert raised.value.error_type == "ServiceUnavailable"
    assert "no-such-bus" in raised.value.message

    async with create_client("events", f"http://127.0.0.1:{free_port()}", REGION, LOCAL) as down:
        started = time.monotonic()
        with pytest.raises(EventBusUnavailableError):
            await EventBridgeProfileUpdates(down, "hemisphere").submit(command)
        assert time.monotonic() - started < 3.0
