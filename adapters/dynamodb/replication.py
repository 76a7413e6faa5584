"""The replicator's ports on DynamoDB (regions.ports.SourceTable and ReplicaTable).

The source side reuses the change stream of adapters.dynamodb.stream (describe, shards, the
streams client) but reads whole records (keys, both images, creation time) rather than the
publisher's snapshots, and reports a trimmed checkpoint instead of skipping past it: the
replicator then copies the table. Leases and checkpoints are the publisher's stores under the
pipeline's own name (regions.replication.pipeline_name).

Each target holds one mark per source it has a whole copy of (no `version`: never replicated):

    item            pk                   sk        attributes
    seed mark       REPLICA#<source>     SEEDED    kind ReplicaSeeded, seededAt
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from adapters.aws import error_code
from adapters.dynamodb import items
from adapters.dynamodb.client import endpoint_of, translate_errors
from adapters.dynamodb.stream import RECORDS_PER_READ, DynamoChangeStream, StreamShard
from domain.errors import ProjectionStoreUnavailableError
from regions.ports import CheckpointExpiredError, ReplicaUnavailableError, StreamRecord, WireItem

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import ScanInputTypeDef
    from types_aiobotocore_dynamodbstreams.client import DynamoDBStreamsClient

log = logging.getLogger(__name__)

# Last writer wins by version; equal is a no-op, so a replayed record changes nothing. The
# attribute names are aliased: the values are DynamoDB's, whatever its reserved words.
_NEWER_ONLY = "attribute_not_exists(#pk) OR #version < :version"
_NOT_NEWER = "attribute_exists(#pk) AND #version <= :version"
_NAMES = {"#pk": items.PK, "#version": "version"}
KIND_SEED: Final = "ReplicaSeeded"


def _seed_key(source: str) -> dict[str, dict[str, str]]:
    # No `version`: the mark is this replica's own bookkeeping and never replicates.
    return {items.PK: {"S": f"REPLICA#{source}"}, items.SK: {"S": "SEEDED"}}


def _epoch_seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def record_from_wire(record: Mapping[str, Any]) -> StreamRecord:
    data = record["dynamodb"]
    new_image = None if record.get("eventName") == "REMOVE" else data.get("NewImage")
    return StreamRecord(
        sequence_number=str(data["SequenceNumber"]),
        key=data.get("Keys", {}),
        new_image=new_image,
        old_image=data.get("OldImage"),
        created_at=_epoch_seconds(data["ApproximateCreationDateTime"]),
    )


class DynamoReplicationSource:
    """This region's table and its stream, as the replicator reads them."""

    def __init__(
        self, client: DynamoDBClient, streams: DynamoDBStreamsClient, table_name: str
    ) -> None:
        self._client = client
        self._streams = streams
        self._table = table_name
        self._endpoint = endpoint_of(client)
        self._stream = DynamoChangeStream(client, streams, table_name)

    async def latest_stream(self) -> str | None:
        return await self._stream.latest_stream()

    async def shards(self, stream: str) -> list[StreamShard]:
        return await self._stream.shards(stream)

    async def open_shard(self, stream: str, shard_id: str, after: str | None) -> _RecordReader:
        return _RecordReader(self, stream, shard_id, after)

    async def scan(self) -> AsyncIterator[WireItem]:
        params: ScanInputTypeDef = {"TableName": self._table, "ConsistentRead": True}
        while True:
            with translate_errors(self._endpoint):
                response = await self._client.scan(**params)
            for raw in response.get("Items", []):
                yield raw
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            params["ExclusiveStartKey"] = last

    async def iterator(self, stream: str, shard_id: str, after: str | None) -> str:
        params: dict[str, Any] = {"StreamArn": stream, "ShardId": shard_id}
        if after is None:
            params["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            params["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            params["SequenceNumber"] = after
        try:
            with translate_errors(self._endpoint):
                response = await self._streams.get_shard_iterator(**params)
        except ClientError as error:
            if error_code(error) == "TrimmedDataAccessException":
                raise CheckpointExpiredError(
                    f"shard {shard_id}: the records after {after} are past the stream's retention"
                ) from error
            raise
        return str(response["ShardIterator"])

    async def records(self, iterator: str) -> tuple[list[StreamRecord], str | None]:
        with translate_errors(self._endpoint):
            response = await self._streams.get_records(
                ShardIterator=iterator, Limit=RECORDS_PER_READ
            )
        found = [record_from_wire(record) for record in response.get("Records", [])]
        return found, response.get("NextShardIterator")


class _RecordReader:
    """regions.ports.RecordReader: follows the shard's iterators; gets a fresh one after the
    last record read when an iterator expires (15 minutes)."""

    def __init__(
        self, source: DynamoReplicationSource, stream: str, shard_id: str, after: str | None
    ) -> None:
        self._source = source
        self._stream = stream
        self._shard_id = shard_id
        self._after = after
        self._iterator: str | None = None
        self._ended = False

    async def read(self) -> tuple[Sequence[StreamRecord], bool]:
        if self._ended:
            return (), True
        if self._iterator is None:
            self._iterator = await self._source.iterator(self._stream, self._shard_id, self._after)
        try:
            found, self._iterator = await self._source.records(self._iterator)
        except ClientError as error:
            if error_code(error) == "ExpiredIteratorException":
                self._iterator = None
                return (), False
            if error_code(error) == "LimitExceededException":  # over 5 reads/s on the shard
                return (), False
            if error_code(error) == "TrimmedDataAccessException":
                raise CheckpointExpiredError(
                    f"shard {self._shard_id}: records after {self._after} were trimmed"
                ) from error
            raise
        if found:
            self._after = found[-1].sequence_number
        self._ended = self._iterator is None
        return found, self._ended


class DynamoReplicaTable:
    """Another region's table (its own endpoint, its own region name for SigV4)."""

    def __init__(self, client: DynamoDBClient, table_name: str, region: str) -> None:
        self._client = client
        self._table = table_name
        self._region = region
        self._endpoint = endpoint_of(client)

    @property
    def region(self) -> str:
        return self._region

    async def put_if_newer(self, item: WireItem, version: int) -> bool:
        return await self._conditional(
            self._client.put_item,
            Item=item,
            ConditionExpression=_NEWER_ONLY,
            version=version,
        )

    async def delete_if_not_newer(self, key: WireItem, version: int) -> bool:
        return await self._conditional(
            self._client.delete_item,
            Key=key,
            ConditionExpression=_NOT_NEWER,
            version=version,
        )

    async def is_seeded(self, source: str) -> bool:
        try:
            with translate_errors(self._endpoint):
                response = await self._client.get_item(
                    TableName=self._table, Key=_seed_key(source), ConsistentRead=True
                )
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return False
            raise
        except ProjectionStoreUnavailableError as error:
            raise ReplicaUnavailableError(f"region {self._region}: {error.message}") from error
        return "Item" in response

    async def mark_seeded(self, source: str) -> None:
        item = {
            **_seed_key(source),
            "kind": {"S": KIND_SEED},
            "seededAt": {"S": datetime.now(UTC).isoformat(timespec="milliseconds")},
        }
        try:
            with translate_errors(self._endpoint):
                await self._client.put_item(TableName=self._table, Item=item)
        except ProjectionStoreUnavailableError as error:
            raise ReplicaUnavailableError(f"region {self._region}: {error.message}") from error

    async def _conditional(self, call: Any, *, version: int, **params: Any) -> bool:
        try:
            with translate_errors(self._endpoint):
                await call(
                    TableName=self._table,
                    ExpressionAttributeNames=_NAMES,
                    ExpressionAttributeValues={":version": {"N": str(version)}},
                    **params,
                )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            if error_code(error) == "ResourceNotFoundException":
                # The region is starting and has not created its table yet: wait for it.
                raise ReplicaUnavailableError(
                    f"region {self._region}: no table {self._table} yet"
                ) from error
            raise
        except ProjectionStoreUnavailableError as error:
            raise ReplicaUnavailableError(f"region {self._region}: {error.message}") from error
        return True
