"""hemisphere.moto.stream_wait on the local endpoint: the global table stand-in's GetRecords
(the replicator's clients) waits for a change; every other reader is answered at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.aws import REPLICATION_AGENT, StaticCredentials, aws_client, client_config
from hemisphere.moto.stream_wait import WAIT_SECONDS

CREDENTIALS = StaticCredentials("hemisphere-local", "hemisphere-local")
REGION = "us-east-1"


@pytest.fixture
async def stream(aws_endpoint: str, table_name: str) -> AsyncIterator[tuple[Any, str]]:
    """A table with a stream, and a LATEST iterator of its shard."""
    async with aws_client("dynamodb", aws_endpoint, REGION, CREDENTIALS) as dynamodb:
        created = await dynamodb.create_table(
            TableName=table_name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        arn = created["TableDescription"]["LatestStreamArn"]
        async with aws_client("dynamodbstreams", aws_endpoint, REGION, CREDENTIALS) as streams:
            shard = (await streams.describe_stream(StreamArn=arn))["StreamDescription"]["Shards"][0]
            iterator = await streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
            )
            yield dynamodb, iterator["ShardIterator"]
        await dynamodb.delete_table(TableName=table_name)


async def _read(aws_endpoint: str, iterator: str, *, replication: bool) -> tuple[float, Any]:
    config = client_config(user_agent_extra=REPLICATION_AGENT if replication else None)
    async with aws_client(
        "dynamodbstreams", aws_endpoint, REGION, CREDENTIALS, config=config
    ) as streams:
        began = time.monotonic()
        answer = await streams.get_records(ShardIterator=iterator)
        return time.monotonic() - began, answer


async def test_the_replications_read_waits_for_a_change_and_returns_with_it(
    aws_endpoint: str, table_name: str, stream: tuple[Any, str]
) -> None:
    dynamodb, iterator = stream
    reading = asyncio.create_task(_read(aws_endpoint, iterator, replication=True))
    await asyncio.sleep(0.15)
    assert not reading.done()  # nothing new yet: it waits
    await dynamodb.put_item(TableName=table_name, Item={"pk": {"S": "a"}})
    waited, answer = await reading
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in answer["Records"]] == ["a"]
    assert waited < WAIT_SECONDS  # answered when the change came, not at the end of the wait


async def test_with_nothing_new_it_answers_empty_after_the_wait(
    aws_endpoint: str, stream: tuple[Any, str]
) -> None:
    _, iterator = stream
    waited, answer = await _read(aws_endpoint, iterator, replication=True)
    assert answer["Records"] == [] and answer["NextShardIterator"]
    assert waited >= WAIT_SECONDS * 0.9


async def test_any_other_reader_is_answered_at_once(
    aws_endpoint: str, stream: tuple[Any, str]
) -> None:
    _, iterator = stream
    waited, answer = await _read(aws_endpoint, iterator, replication=False)
    assert answer["Records"] == []
    assert waited < WAIT_SECONDS / 2
