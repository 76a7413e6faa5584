"""The write side of the projections: projections.ports.ProjectionWriter over the DynamoDB table.

Every write is conditional on the version, so events may arrive late, twice or out of order
(several relays, replays after a failure, a rebuild running beside the relay): an item is
only ever replaced by a strictly newer snapshot of itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from adapters.dynamodb import items
from adapters.dynamodb.client import endpoint_of, translate_errors
from domain.events import Event
from domain.model import RegionControl
from domain.tracing import TRACE_CONTEXT_KEY

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import ScanInputTypeDef

# Equal versions are skipped too: replaying an event is a no-op, not a rewrite (which would
# emit a stream record and wake subscribers for nothing).
_NEWER_ONLY = "attribute_not_exists(pk) OR version < :version"
# The epoch never goes back: a demoted primary that comes back must not undo a promotion.
# Within one epoch only its own primary may rewrite the record (read-only on/off); two regions
# claiming the same epoch is a split brain, and the first claim wins.
_EPOCH_NOT_LOWER = (
    "attribute_not_exists(pk) OR epoch < :epoch OR (epoch = :epoch AND primaryRegion = :primary)"
)


@dataclass(frozen=True, slots=True)
class WriteCounts:
    written: int
    # Events whose item was already as new or newer (in the table or in the same batch).
    skipped: int
    # The events whose items were written, in no particular order.
    events: tuple[Event, ...] = ()


def _item(event: Event) -> items.Item:
    item = items.event_to_item(event)
    if event.trace_context:
        # Rides the stream record to the publication, which continues the change's trace.
        item[TRACE_CONTEXT_KEY] = dict(event.trace_context)
    return item


class DynamoProjectionWriter:
    def __init__(self, client: DynamoDBClient, table_name: str, *, concurrency: int = 16) -> None:
        self._client = client
        self._table = table_name
        self._endpoint = endpoint_of(client)
        # Per writer, not per call: the relay and a rebuild sharing one writer share the bound,
        # which keeps the client's connection pool (64) free for reads.
        self._slots = asyncio.Semaphore(concurrency)

    async def apply(self, events: Sequence[Event]) -> Sequence[Event]:
        return (await self.write(events)).events

    async def write(self, events: Sequence[Event]) -> WriteCounts:
        """Project `events`; if any write fails, the error is raised (the others may have
        landed, which is harmless: the batch is retried and they are then skipped)."""
        latest = _latest_per_key((_item(event), event) for event in events)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._put_if_newer(item)) for item, _ in latest]
        except BaseExceptionGroup as failed:
            # Callers handle ProjectionStoreUnavailableError, not groups; the first failure
            # stands for the batch.
            raise failed.exceptions[0] from None
        written = tuple(
            event for (_, event), task in zip(latest, tasks, strict=True) if task.result()
        )
        return WriteCounts(written=len(written), skipped=len(events) - len(written), events=written)

    async def _put_if_newer(self, item: items.Item) -> bool:
        async with self._slots:
            return await self._put_conditionally(
                item, _NEWER_ONLY, {":version": {"N": str(item["version"])}}
            )

    async def put_region_control(self, control: RegionControl) -> bool:
        """Write the topology record unless the stored one has a higher epoch, or the same
        epoch with another primary. Returns whether it was written."""
        return await self._put_conditionally(
            items.region_control_item(control),
            _EPOCH_NOT_LOWER,
            {":epoch": {"N": str(control.epoch)}, ":primary": {"S": control.primary_region}},
        )

    async def init_region_control(self, control: RegionControl) -> bool:
        """Create the topology record if there is none; never touch an existing one (a
        restart must not undo a promotion or a read-only switch). Returns whether it wrote."""
        item = items.region_control_item(control)
        try:
            with translate_errors(self._endpoint):
                await self._client.put_item(
                    TableName=self._table,
                    Item=items.item_to_wire(item),
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def _put_conditionally(
        self, item: items.Item, condition: str, values: dict[str, items.WireValue]
    ) -> bool:
        try:
            with translate_errors(self._endpoint):
                await self._client.put_item(
                    TableName=self._table,
                    Item=items.item_to_wire(item),
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def scan_all(self) -> AsyncIterator[items.Item]:
        """Every item of the table, plain, in no particular order (for tests and tooling:
        a full scan is never on a request path)."""
        params: ScanInputTypeDef = {"TableName": self._table, "ConsistentRead": True}
        while True:
            with translate_errors(self._endpoint):
                response = await self._client.scan(**params)
            for raw in response.get("Items", []):
                yield items.item_from_wire(raw)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            params["ExclusiveStartKey"] = last


def _latest_per_key(
    batch: Iterable[tuple[items.Item, Event]],
) -> list[tuple[items.Item, Event]]:
    # A saga emits one event per step, so a batch often holds several versions of one order;
    # writing only the newest saves the writes (and stream records) the others would cost.
    latest: dict[tuple[str, str], tuple[items.Item, Event]] = {}
    for item, event in batch:
        key = (item[items.PK], item[items.SK])
        kept = latest.get(key)
        if kept is None or item["version"] > kept[0]["version"]:
            latest[key] = (item, event)
    return list(latest.values())
