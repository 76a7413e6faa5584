"""Several regions' tables on their own local AWS endpoints (one moto server each), with a
replicator per region running in this event loop: the global table stand-in under test.

Each region's replicas are reached through a DelayProxy, so a test can cut a region off (a
network partition) and restore it without losing its data.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from adapters.aws import error_code
from adapters.dynamodb.client import StaticCredentials, create_client
from adapters.dynamodb.leases import DynamoCheckpointStore, DynamoLeaseStore
from adapters.dynamodb.replication import DynamoReplicaTable, DynamoReplicationSource
from adapters.dynamodb.stream import create_streams_client
from adapters.dynamodb.table import ensure_table
from hemisphere.localstack import MotoServer
from hemisphere.roles.replicator import LEASE_RENEW_SECONDS, LEASE_SECONDS
from regions.delay_proxy import DelayProxy, ProxySpec
from regions.replication import ReplicationTimings, Replicator, TargetReplicator, pipeline_name
from subscriptions.lease import LeaseKeeper, unique_holder

LOCAL = StaticCredentials("hemisphere-local", "hemisphere-local")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
FAST = ReplicationTimings(
    poll_interval=0.02, checkpoint_interval=0.2, relist_interval=1.0, max_backoff=0.3
)


@contextlib.contextmanager
def moto_servers(count: int) -> Iterator[list[str]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(MotoServer()).url for _ in range(count)]


@dataclass
class Region:
    name: str
    endpoint: str
    client: Any
    proxy: DelayProxy  # how the other regions' replicators reach this region
    replicator: Replicator | None = None
    task: asyncio.Task[None] | None = None

    @property
    def proxied_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"


@dataclass
class ReplicatedRegions:
    table: str
    regions: dict[str, Region] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Region:
        return self.regions[name]

    async def get(self, region: str, pk: str, sk: str = "A") -> dict[str, Any] | None:
        response = await self[region].client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    async def put(self, region: str, pk: str, version: int, **attributes: str) -> bool:
        """A local write as the projector makes it: only over an older version (or none).
        Whether it was written: a newer version may have arrived from another region."""
        item = {"pk": {"S": pk}, "sk": {"S": "A"}, "version": {"N": str(version)}}
        item.update({name: {"S": value} for name, value in attributes.items()})
        try:
            await self[region].client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR version < :version",
                ExpressionAttributeValues={":version": {"N": str(version)}},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    async def replicating(self) -> None:
        """Wait until every pipeline has made its first copy and reads its stream."""

        async def all_replicating() -> bool:
            return all(
                pipeline.state == "replicating"
                for region in self.regions.values()
                if region.replicator is not None
                for pipeline in region.replicator.pipelines
            )

        await eventually(all_replicating)

    async def version_in(self, region: str, pk: str) -> int | None:
        item = await self.get(region, pk)
        return None if item is None else int(item["version"]["N"])


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 20.0, every: float = 0.02
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def replicated_regions(
    endpoints: Sequence[str],
    table: str,
    *,
    names: Sequence[str] = REGIONS,
    timings: ReplicationTimings = FAST,
    run: bool = True,
) -> AsyncIterator[ReplicatedRegions]:
    """A table per region, and (when `run`) every region's replicator running."""
    world = ReplicatedRegions(table)
    async with contextlib.AsyncExitStack() as stack:
        for name, endpoint in zip(names, endpoints, strict=False):
            client = await stack.enter_async_context(create_client(endpoint, name, LOCAL))
            await ensure_table(client, table)
            port = urlsplit(endpoint).port
            assert port is not None
            proxy = DelayProxy(ProxySpec("127.0.0.1", 0, "127.0.0.1", port, 0.0, name=name))
            await proxy.start()
            stack.push_async_callback(proxy.stop)
            world.regions[name] = Region(name, endpoint, client, proxy)
        if run:
            for name in world.regions:
                await start_replicator(stack, world, name, timings)
            await world.replicating()
        try:
            yield world
        finally:
            for region in world.regions.values():
                await stop_replicator(region)


async def start_replicator(
    stack: contextlib.AsyncExitStack,
    world: ReplicatedRegions,
    name: str,
    timings: ReplicationTimings = FAST,
    targets: Mapping[str, str] | None = None,
) -> Replicator:
    region = world[name]
    streams = await stack.enter_async_context(create_streams_client(region.endpoint, name, LOCAL))
    source = DynamoReplicationSource(region.client, streams, world.table)
    holder = unique_holder()
    pipelines = []
    others = targets or {
        other.name: other.proxied_endpoint for other in world.regions.values() if other != region
    }
    for target, endpoint in others.items():
        target_client = await stack.enter_async_context(create_client(endpoint, target, LOCAL))
        pipe = pipeline_name(name, target)
        pipelines.append(
            TargetReplicator(
                name,
                source,
                DynamoReplicaTable(target_client, world.table, target),
                DynamoCheckpointStore(region.client, world.table, pipe),
                LeaseKeeper(
                    DynamoLeaseStore(region.client, world.table, pipe),
                    holder,
                    duration=LEASE_SECONDS,
                    renew_every=LEASE_RENEW_SECONDS,
                ),
                timings,
            )
        )
    region.replicator = Replicator(name, pipelines)
    region.task = asyncio.create_task(region.replicator.run())
    return region.replicator


async def stop_replicator(region: Region) -> None:
    if region.task is not None:
        region.task.cancel()
        await asyncio.gather(region.task, return_exceptions=True)
        region.task = None
