"""The stream consumers' lease and checkpoints, as control items in the table (ports:
subscriptions.lease.LeaseStore, subscriptions.checkpoints.CheckpointStore). The stream
publisher keeps them, and each replication pipeline (regions.replication) keeps its own.

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
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from adapters.aws import error_code
from adapters.dynamodb import items
from adapters.dynamodb.client import endpoint_of, translate_errors

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef

KIND_LEASE: Final = "StreamLease"
KIND_CHECKPOINT: Final = "StreamCheckpoint"
KIND_PUBLICATION_START: Final = "StreamPublicationStart"
LEASE_SK: Final = "LEASE"
_TRANSACTION_RETRIES: Final = 5


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


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
            if error_code(error) == "ConditionalCheckFailedException":
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
            if error_code(error) == "ConditionalCheckFailedException":
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
            if error_code(error) != "ConditionalCheckFailedException":
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
