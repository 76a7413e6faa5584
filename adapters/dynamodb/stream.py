"""The table's change stream, and the stream publisher's lease and checkpoints in the table.

Ports: subscriptions.checkpoints.ChangeStream / CheckpointStore, subscriptions.lease.LeaseStore.

Control items live beside the projections (keys below) so that they replicate, back up and
disappear with the table; they carry no index attributes, so no query ever lists them, and
no `kind` the publisher publishes, so their own stream records are skipped:

    item                pk                          sk              attributes
    lease               LEASE#<name>                LEASE           holder, fencingToken,
                                                                    expiresAt (epoch ms)
    checkpoint          CHECKPOINT#<name>           SHARD#<shard>   streamArn, sequenceNumber,
                                                                    finished, fencingToken
    publication start   CHECKPOINT#<name>           START#<arn>     streamArn, startsAt
                                                                    (epoch seconds)

`<name>` is per region (`stream-publisher#us-east-1`): with a global table every region's
items replicate everywhere, and each region's publisher must keep its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.config import Config
from botocore.exceptions import ClientError

from adapters.aws import StaticCredentials, aws_client
from adapters.dynamodb import items
from adapters.dynamodb.client import endpoint_of, translate_errors
from domain.aggregates import Snapshot
from domain.tracing import TRACE_CONTEXT_KEY

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef
    from types_aiobotocore_dynamodbstreams.client import DynamoDBStreamsClient

log = logging.getLogger(__name__)

KIND_LEASE: Final = "StreamLease"
KIND_CHECKPOINT: Final = "StreamCheckpoint"
KIND_PUBLICATION_START: Final = "StreamPublicationStart"
LEASE_SK: Final = "LEASE"
# GetRecords returns at most 1,000 records or 1 MB.
RECORDS_PER_READ: Final = 1000
_TRANSACTION_RETRIES: Final = 5


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


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# --- the change stream ------------------------------------------------------------------------


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


class DynamoChangeStream:
    def __init__(
        self, client: DynamoDBClient, streams: DynamoDBStreamsClient, table_name: str
    ) -> None:
        self._client = client
        self._streams = streams
        self._table = table_name
        self._endpoint = endpoint_of(client)

    async def latest_stream(self) -> str | None:
        with translate_errors(self._endpoint):
            table = (await self._client.describe_table(TableName=self._table))["Table"]
        return table.get("LatestStreamArn")

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
                if _code(error) != "TrimmedDataAccessException":
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
            if _code(error) == "ExpiredIteratorException":
                self._iterator = None
                return (), False
            if _code(error) == "LimitExceededException":  # over 5 reads/s on the shard
                return (), False
            raise
        if changes:
            self._after = changes[-1].sequence_number
        # No next iterator: the shard is closed and we have read it all.
        self._ended = self._iterator is None
        return changes, self._ended


# --- the lease --------------------------------------------------------------------------------


def lease_key(name: str) -> dict[str, str]:
    return {items.PK: f"LEASE#{name}", items.SK: LEASE_SK}


class DynamoLeaseStore:
    """subscriptions.lease.LeaseStore on one item. Standbys read before they write: a failed
    conditional write costs a write unit, and they try every renewal interval."""

    def __init__(self, client: DynamoDBClient, table_name: str, name: str) -> None:
        self._client = client
        self._table = table_name
        self._key = items.key_to_wire(lease_key(name))
        self._endpoint = endpoint_of(client)

    async def acquire(self, holder: str, *, now: float, duration: float) -> int | None:
        now_ms = int(now * 1000)
        with translate_errors(self._endpoint):
            current = (
                await self._client.get_item(
                    TableName=self._table, Key=self._key, ConsistentRead=True
                )
            ).get("Item")
        if (
            current is not None
            and int(current["expiresAt"]["N"]) >= now_ms
            and current["holder"]["S"] != holder
        ):
            return None
        try:
            with translate_errors(self._endpoint):
                response = await self._client.update_item(
                    TableName=self._table,
                    Key=self._key,
                    UpdateExpression=(
                        "SET #kind = :kind, #holder = :holder, #expires = :expires, "
                        "#acquired = :at, #token = if_not_exists(#token, :zero) + :one"
                    ),
                    # Our own lease, still valid, is ours to take again: a holder that gave
                    # it up for want of a timely renewal (an overloaded event loop) resumes at
                    # once, under a new token that fences its former tenure.
                    ConditionExpression=(
                        "attribute_not_exists(pk) OR #expires < :now OR #holder = :holder"
                    ),
                    ExpressionAttributeNames={
                        "#kind": "kind",
                        "#holder": "holder",
                        "#expires": "expiresAt",
                        "#acquired": "acquiredAt",
                        "#token": "fencingToken",
                    },
                    ExpressionAttributeValues={
                        ":kind": {"S": KIND_LEASE},
                        ":holder": {"S": holder},
                        ":expires": {"N": str(now_ms + int(duration * 1000))},
                        ":at": {"S": _now_iso()},
                        ":zero": {"N": "0"},
                        ":one": {"N": "1"},
                        ":now": {"N": str(now_ms)},
                    },
                    ReturnValues="ALL_NEW",
                )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return None  # another standby was quicker
            raise
        return int(response["Attributes"]["fencingToken"]["N"])

    async def renew(self, holder: str, token: int, *, now: float, duration: float) -> bool:
        expires = int(now * 1000) + int(duration * 1000)
        return await self._update_if_held(holder, token, expires)

    async def release(self, holder: str, token: int) -> None:
        await self._update_if_held(holder, token, 0)

    async def _update_if_held(self, holder: str, token: int, expires_ms: int) -> bool:
        try:
            with translate_errors(self._endpoint):
                await self._client.update_item(
                    TableName=self._table,
                    Key=self._key,
                    UpdateExpression="SET #expires = :expires",
                    ConditionExpression="#holder = :holder AND #token = :token",
                    ExpressionAttributeNames={
                        "#expires": "expiresAt",
                        "#holder": "holder",
                        "#token": "fencingToken",
                    },
                    ExpressionAttributeValues={
                        ":expires": {"N": str(expires_ms)},
                        ":holder": {"S": holder},
                        ":token": {"N": str(token)},
                    },
                )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True


# --- checkpoints ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShardCheckpoint:
    sequence_number: str | None
    finished: bool


class DynamoCheckpointStore:
    """subscriptions.checkpoints.CheckpointStore: one item per shard, each write in a
    transaction with a ConditionCheck that the lease is still ours under the same token."""

    def __init__(self, client: DynamoDBClient, table_name: str, name: str) -> None:
        self._client = client
        self._table = table_name
        self._partition = f"CHECKPOINT#{name}"
        self._lease_key = items.key_to_wire(lease_key(name))
        self._endpoint = endpoint_of(client)

    async def load(self, stream: str) -> dict[str, ShardCheckpoint]:
        found: dict[str, ShardCheckpoint] = {}
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": self._partition}},
            "ConsistentRead": True,
        }
        while True:
            with translate_errors(self._endpoint):
                response = await self._client.query(**params)
            for raw in response.get("Items", []):
                item = items.item_from_wire(raw)
                if item.get("kind") == KIND_CHECKPOINT and item.get("streamArn") == stream:
                    found[str(item["shardId"])] = ShardCheckpoint(
                        item.get("sequenceNumber"), bool(item.get("finished"))
                    )
            last = response.get("LastEvaluatedKey")
            if not last:
                return found
            params["ExclusiveStartKey"] = last

    async def save(
        self,
        stream: str,
        shard_id: str,
        sequence_number: str | None,
        *,
        finished: bool,
        holder: str,
        token: int,
    ) -> bool:
        item = {
            items.PK: self._partition,
            items.SK: f"SHARD#{shard_id}",
            "kind": KIND_CHECKPOINT,
            "streamArn": stream,
            "shardId": shard_id,
            "sequenceNumber": sequence_number,
            "finished": finished,
            "holder": holder,
            "fencingToken": token,
            "updatedAt": _now_iso(),
        }
        return await self._fenced(
            [{"Put": {"TableName": self._table, "Item": items.item_to_wire(item)}}], holder, token
        )

    async def publication_start(self, stream: str) -> float | None:
        with translate_errors(self._endpoint):
            response = await self._client.get_item(
                TableName=self._table, Key=self._start_key(stream), ConsistentRead=True
            )
        raw = response.get("Item")
        return None if raw is None else float(items.item_from_wire(raw)["startsAt"])

    async def claim_publication_start(self, stream: str, at: float) -> float:
        item = {
            items.PK: self._partition,
            items.SK: f"START#{stream}",
            "kind": KIND_PUBLICATION_START,
            "streamArn": stream,
            "startsAt": int(at),
        }
        try:
            with translate_errors(self._endpoint):
                await self._client.put_item(
                    TableName=self._table,
                    Item=items.item_to_wire(item),
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
        claimed = await self.publication_start(stream)
        assert claimed is not None, "a publication start just written or found"
        return claimed

    def _start_key(self, stream: str) -> items.WireItem:
        return items.key_to_wire({items.PK: self._partition, items.SK: f"START#{stream}"})

    async def forget(
        self, stream: str, shard_ids: Collection[str], *, holder: str, token: int
    ) -> bool:
        ids = sorted(shard_ids)
        # A transaction holds at most 100 items: the lease check and 99 deletions.
        for start in range(0, len(ids), 99):
            deletions: list[TransactWriteItemTypeDef] = [
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": items.key_to_wire(
                            {items.PK: self._partition, items.SK: f"SHARD#{shard_id}"}
                        ),
                    }
                }
                for shard_id in ids[start : start + 99]
            ]
            if not await self._fenced(deletions, holder, token):
                return False
        return True

    async def _fenced(
        self, writes: list[TransactWriteItemTypeDef], holder: str, token: int
    ) -> bool:
        check: TransactWriteItemTypeDef = {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": self._lease_key,
                "ConditionExpression": "#holder = :holder AND #token = :token",
                "ExpressionAttributeNames": {"#holder": "holder", "#token": "fencingToken"},
                "ExpressionAttributeValues": {
                    ":holder": {"S": holder},
                    ":token": {"N": str(token)},
                },
            }
        }
        delay = 0.02
        for attempt in range(_TRANSACTION_RETRIES + 1):
            try:
                with translate_errors(self._endpoint):
                    await self._client.transact_write_items(TransactItems=[check, *writes])
                return True
            except ClientError as error:
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return False
                # A renewal of the lease item racing the check cancels the transaction with a
                # TransactionConflict: not an answer, try again.
                if "TransactionConflict" not in reasons or attempt == _TRANSACTION_RETRIES:
                    raise
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")
