"""The lease and the checkpoints in the projection table (moto): conditional takeover, tokens
that only grow, and checkpoint writes refused to anyone but the current holder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.dynamodb.client import StaticCredentials, create_client
from adapters.dynamodb.leases import DynamoCheckpointStore, DynamoLeaseStore, ShardCheckpoint
from adapters.dynamodb.table import ensure_table
from subscriptions.stream_publisher import lease_name

pytestmark = pytest.mark.integration

LOCAL = StaticCredentials("hemisphere-local", "hemisphere-local")
NAME = lease_name("us-east-1")
T0 = 1_900_000_000.0


@pytest.fixture
async def client(aws_endpoint: str, table_name: str) -> AsyncIterator[Any]:
    async with create_client(aws_endpoint, "us-east-1", LOCAL) as client:
        await ensure_table(client, table_name)
        yield client


async def test_the_lease_is_taken_once_until_it_expires(client: Any, table_name: str) -> None:
    leases = DynamoLeaseStore(client, table_name, NAME)
    assert await leases.acquire("a", now=T0, duration=5) == 1
    assert await leases.acquire("b", now=T0 + 1, duration=5) is None
    assert await leases.renew("a", 1, now=T0 + 2, duration=5)  # now valid until T0 + 7
    assert await leases.acquire("b", now=T0 + 6, duration=5) is None
    assert await leases.acquire("b", now=T0 + 7.5, duration=5) == 2
    assert not await leases.renew("a", 1, now=T0 + 8, duration=5)
    await leases.release("a", 1)  # not a's any more: changes nothing
    assert await leases.acquire("a", now=T0 + 8, duration=5) is None
    await leases.release("b", 2)
    assert await leases.acquire("a", now=T0 + 8, duration=5) == 3
    # A holder that gave its lease up locally (renewed too late) takes it back at once.
    assert await leases.acquire("a", now=T0 + 9, duration=5) == 4
    assert not await leases.renew("a", 3, now=T0 + 9, duration=5)


async def test_checkpoints_are_written_only_under_the_current_token(
    client: Any, table_name: str
) -> None:
    leases = DynamoLeaseStore(client, table_name, NAME)
    checkpoints = DynamoCheckpointStore(client, table_name, NAME)
    assert await leases.acquire("a", now=T0, duration=5) == 1
    assert await checkpoints.save("arn", "s1", "100", finished=False, holder="a", token=1)
    assert await leases.acquire("b", now=T0 + 10, duration=5) == 2
    # a paused past its lease: its late checkpoint must not move b's.
    assert not await checkpoints.save("arn", "s1", "90", finished=False, holder="a", token=1)
    assert await checkpoints.save("arn", "s1", "150", finished=True, holder="b", token=2)
    assert await checkpoints.save("arn", "s2", None, finished=False, holder="b", token=2)
    assert await checkpoints.load("arn") == {
        "s1": ShardCheckpoint("150", True),
        "s2": ShardCheckpoint(None, False),
    }
    assert await checkpoints.load("another-stream") == {}
    assert not await checkpoints.forget("arn", {"s1"}, holder="a", token=1)
    assert await checkpoints.forget("arn", {"s1"}, holder="b", token=2)
    assert set(await checkpoints.load("arn")) == {"s2"}
