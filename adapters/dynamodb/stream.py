"""The table's change stream (port: subscriptions.checkpoints.ChangeStream), as the stream
publisher reads it: the table's latest stream, its shards, and each shard's records as the
snapshots they carry. Its consumers' lease and checkpoints: adapters.dynamodb.leases.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.config import Config
from botocore.exceptions import ClientError

from adapters.aws import StaticCredentials, aws_client, error_code
from adapters.dynamodb import items
from adapters.dynamodb.client import endpoint_of, translate_errors
from domain.aggregates import Snapshot
from domain.tracing import TRACE_CONTEXT_KEY

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_dynamodbstreams.client import DynamoDBStreamsClient

log = logging.getLogger(__name__)

# GetRecords returns at most 1,000 records or 1 MB.
RECORDS_PER_READ: Final = 1000


@contextlib.asynccontextmanager
async def create_streams_client(
    endpoint_url: str | None,
    region: str,
    credentials: StaticCredentials | None = None,
    *,
    config: Config | None = None,
) -> AsyncIterator[DynamoDBStreamsClient]:
    """A DynamoDB Streams client (adapters.aws.aws_client: fails fast like the others)."""
    async with aws_client(
        "dynamodbstreams", endpoint_url, region, credentials, config=config
    ) as client:
        yield client


@dataclass(frozen=True, slots=True)
class StreamShard:
    shard_id: str
    parent_id: str | None


@dataclass(frozen=True, slots=True)
class StreamChange:
    sequence_number: str
    snapshot: Snapshot | None
    created_at: float | None = None
    # The trace the change belongs to (adapters.dynamodb.writer puts it on the item).
    trace_context: Mapping[str, str] | None = None


def change_from_record(record: Mapping[str, Any]) -> StreamChange:
    """A stream record as the publisher sees it: the new image's snapshot, or None when the
    record is not an entity's change (control items, removals, an unreadable item)."""
    data = record["dynamodb"]
    image = None if record.get("eventName") == "REMOVE" else data.get("NewImage")
    carrier = image.get(TRACE_CONTEXT_KEY) if image is not None else None
    return StreamChange(
        str(data["SequenceNumber"]),
        _snapshot(image),
        _epoch_seconds(data.get("ApproximateCreationDateTime")),
        items.from_wire(carrier) if isinstance(carrier, Mapping) else None,
    )


def _epoch_seconds(value: object) -> float | None:
    """botocore parses ApproximateCreationDateTime into a datetime (a number on the wire)."""
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=UTC).timestamp()
    if isinstance(value, int | float):
        return float(value)
    return None


def _snapshot(image: Mapping[str, Any] | None) -> Snapshot | None:
    """The aggregate snapshot an image holds; None for anything else in the table (control
    items: topology, the lease, checkpoints), which is never published."""
    if image is None:
        return None
    item = items.item_from_wire(image)
    aggregate = items.aggregate_of_item(item)
    if aggregate is None:
        return None
    try:
        snapshot: Snapshot = aggregate.from_plain(item)
    except (KeyError, ValueError, TypeError) as error:
        # Written by something other than the projector; publishing it would fail anyway.
        log.error(
            "skipping unreadable item %s/%s in the stream: %r",
            item.get("pk"),
            item.get("sk"),
            error,
        )
        return None
    return snapshot


async def latest_stream_of(client: DynamoDBClient, table_name: str) -> str | None:
    """The ARN of `table_name`'s current stream, or None if it has none."""
    with translate_errors(endpoint_of(client)):
        table = (await client.describe_table(TableName=table_name))["Table"]
    return table.get("LatestStreamArn")


class DynamoChangeStream:
    def __init__(
        self, client: DynamoDBClient, streams: DynamoDBStreamsClient, table_name: str
    ) -> None:
        self._client = client
        self._streams = streams
        self._table = table_name
        self._endpoint = endpoint_of(client)

    async def latest_stream(self) -> str | None:
        return await latest_stream_of(self._client, self._table)

    async def shards(self, stream: str) -> list[StreamShard]:
        found: list[StreamShard] = []
        params: dict[str, Any] = {"StreamArn": stream}
        while True:
            with translate_errors(self._endpoint):
                description = (await self._streams.describe_stream(**params))["StreamDescription"]
            found.extend(
                StreamShard(shard["ShardId"], shard.get("ParentShardId"))
                for shard in description.get("Shards", [])
            )
            last = description.get("LastEvaluatedShardId")
            if not last:
                return found
            params["ExclusiveStartShardId"] = last

    async def open_shard(self, stream: str, shard_id: str, after: str | None) -> _ShardReader:
        return _ShardReader(self, stream, shard_id, after)

    async def iterator(self, stream: str, shard_id: str, after: str | None) -> str:
        params: dict[str, Any] = {"StreamArn": stream, "ShardId": shard_id}
        if after is not None:
            try:
                with translate_errors(self._endpoint):
                    response = await self._streams.get_shard_iterator(
                        **params, ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after
                    )
                return str(response["ShardIterator"])
            except ClientError as error:
                if error_code(error) != "TrimmedDataAccessException":
                    raise
                # Down longer than the stream keeps records (24 h): what was between is gone.
                log.error(
                    "shard %s: checkpoint %s is older than the stream's retention; the changes "
                    "after it that expired were never published",
                    shard_id,
                    after,
                )
        with translate_errors(self._endpoint):
            response = await self._streams.get_shard_iterator(
                **params, ShardIteratorType="TRIM_HORIZON"
            )
        return str(response["ShardIterator"])

    async def records(
        self, iterator: str, limit: int = RECORDS_PER_READ
    ) -> tuple[list[StreamChange], str | None]:
        with translate_errors(self._endpoint):
            response = await self._streams.get_records(ShardIterator=iterator, Limit=limit)
        changes = [change_from_record(record) for record in response.get("Records", [])]
        return changes, response.get("NextShardIterator")


class _ShardReader:
    """subscriptions.checkpoints.ShardReader: follows the shard's iterators, and gets a fresh
    one after the last record read when an iterator expires (after 15 minutes)."""

    def __init__(self, stream: DynamoChangeStream, arn: str, shard_id: str, after: str | None):
        self._stream = stream
        self._arn = arn
        self._shard_id = shard_id
        self._after = after
        self._iterator: str | None = None
        self._ended = False

    async def read(self) -> tuple[Sequence[StreamChange], bool]:
        if self._ended:
            return (), True
        if self._iterator is None:
            self._iterator = await self._stream.iterator(self._arn, self._shard_id, self._after)
        try:
            changes, self._iterator = await self._stream.records(self._iterator)
        except ClientError as error:
            if error_code(error) == "ExpiredIteratorException":
                self._iterator = None
                return (), False
            if error_code(error) == "LimitExceededException":  # over 5 reads/s on the shard
                return (), False
            raise
        if changes:
            self._after = changes[-1].sequence_number
        # No next iterator: the shard is closed and we have read it all.
        self._ended = self._iterator is None
        return changes, self._ended
