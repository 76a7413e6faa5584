"""The global table stand-in on three local AWS endpoints (one moto server per region), each
region's replicator running: changes reach every region, last writer wins by version, replays
and replicated writes are not sent again, a region cut off catches up."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from adapters.dynamodb.reader import DynamoProjectionReader
from adapters.dynamodb.replication import DynamoReplicaTable
from adapters.dynamodb.table import delete_table, ensure_table
from adapters.dynamodb.writer import DynamoProjectionWriter
from domain.model import RegionControl
from regions.ports import ORIGIN_REGION, ORIGIN_TIME
from tests.support.replicated_regions import (
    REGIONS,
    ReplicatedRegions,
    eventually,
    moto_servers,
    replicated_regions,
    start_replicator,
    stop_replicator,
)

pytestmark = pytest.mark.integration

US, EU, AP = REGIONS


@pytest.fixture(scope="module")
def endpoints() -> Iterator[list[str]]:
    with moto_servers(3) as urls:
        yield urls


@pytest.fixture
async def world(endpoints: list[str], table_name: str) -> AsyncIterator[ReplicatedRegions]:
    async with replicated_regions(endpoints, table_name) as regions:
        yield regions


def _sent(world: ReplicatedRegions, source: str, target: str) -> int:
    replicator = world[source].replicator
    assert replicator is not None
    (pipeline,) = [p for p in replicator.pipelines if p.target.region == target]
    return pipeline.sent


async def test_a_write_in_one_region_reaches_the_others_marked_with_its_origin(
    world: ReplicatedRegions,
) -> None:
    await world.put(US, "PRODUCT#1", 1, name="lamp")

    async def everywhere() -> bool:
        return all([await world.version_in(r, "PRODUCT#1") == 1 for r in (EU, AP)])

    await eventually(everywhere)
    for region in (EU, AP):
        item = await world.get(region, "PRODUCT#1")
        assert item is not None
        assert item["name"] == {"S": "lamp"}
        assert item[ORIGIN_REGION] == {"S": US}
        assert float(item[ORIGIN_TIME]["N"]) > 0
    # The origin's own item is as written, unmarked.
    original = await world.get(US, "PRODUCT#1")
    assert original is not None and ORIGIN_REGION not in original
    # Each pipeline counted the write's lag in the histogram its status carries.
    replicator = world[US].replicator
    assert replicator is not None
    for pipeline in replicator.pipelines:
        status = pipeline.status()
        assert 1 <= sum(status["lag_histogram"]["counts"]) <= status["written"]


async def test_a_replicated_write_is_not_sent_on(world: ReplicatedRegions) -> None:
    await world.put(US, "PRODUCT#loop", 1)

    async def arrived() -> bool:
        return all([await world.version_in(r, "PRODUCT#loop") == 1 for r in (EU, AP)])

    await eventually(arrived)
    # A local change in EU and in AP after it: once they reach every region, EU's and AP's
    # pipelines have read their streams past the replicated item.
    await world.put(EU, "PRODUCT#eu-after", 1)
    await world.put(AP, "PRODUCT#ap-after", 1)

    async def markers_everywhere() -> bool:
        return all(
            [
                await world.version_in(region, key) == 1
                for region in REGIONS
                for key in ("PRODUCT#eu-after", "PRODUCT#ap-after")
            ]
        )

    await eventually(markers_everywhere)

    async def each_sent_only_its_own() -> bool:
        # Counters grow after each batch's writes complete: an echo of the replicated item
        # would have been counted with or before the marker behind it, and never goes away.
        return all(
            _sent(world, source, target) == 1
            for source in REGIONS
            for target in REGIONS
            if target != source
        )

    await eventually(each_sent_only_its_own)


async def test_concurrent_writes_converge_on_the_highest_version(
    world: ReplicatedRegions,
) -> None:
    # Each region's projector writes only over an older version: AP's version 3 is refused
    # when EU's 5 reached AP first (a write without the condition would have kept 3 in AP,
    # a replica of nothing; the projector never makes one).
    assert await world.put(US, "ORDER#7", 2, writer=US)
    assert await world.put(EU, "ORDER#7", 5, writer=EU)
    await world.put(AP, "ORDER#7", 3, writer=AP)

    async def converged() -> bool:
        return all([await world.version_in(r, "ORDER#7") == 5 for r in REGIONS])

    await eventually(converged)
    for region in REGIONS:
        item = await world.get(region, "ORDER#7")
        assert item is not None and item["writer"] == {"S": EU}


async def test_replaying_a_change_is_a_no_op(world: ReplicatedRegions) -> None:
    await world.put(US, "PRODUCT#2", 4, name="chair")

    async def arrived() -> bool:
        return await world.version_in(EU, "PRODUCT#2") == 4

    await eventually(arrived)
    replica = DynamoReplicaTable(world[EU].client, world.table, EU)
    item = await world.get(EU, "PRODUCT#2")
    assert item is not None
    assert not await replica.put_if_newer(item, 4)  # the same change again
    assert not await replica.put_if_newer({**item, "version": {"N": "3"}}, 3)  # an older one
    assert await world.version_in(EU, "PRODUCT#2") == 4


async def test_removals_replicate_but_never_remove_a_newer_version(
    world: ReplicatedRegions,
) -> None:
    await world.put(US, "PRODUCT#3", 1)

    async def arrived() -> bool:
        return all([await world.version_in(r, "PRODUCT#3") == 1 for r in REGIONS])

    await eventually(arrived)
    await world[US].client.delete_item(
        TableName=world.table, Key={"pk": {"S": "PRODUCT#3"}, "sk": {"S": "A"}}
    )

    async def gone() -> bool:
        return all([await world.get(r, "PRODUCT#3") is None for r in REGIONS])

    await eventually(gone)
    # A removal of version 1 arriving where version 2 exists leaves version 2.
    await world.put(AP, "PRODUCT#4", 2)
    replica = DynamoReplicaTable(world[AP].client, world.table, AP)
    assert not await replica.delete_if_not_newer({"pk": {"S": "PRODUCT#4"}, "sk": {"S": "A"}}, 1)
    assert await world.version_in(AP, "PRODUCT#4") == 2


async def test_a_region_cut_off_does_not_hold_back_the_others_and_catches_up(
    world: ReplicatedRegions,
) -> None:
    await world[AP].proxy.cut()
    for n in range(20):
        await world.put(US, f"ORDER#cut-{n}", 1)
    last_write = time.monotonic()

    async def in_eu() -> bool:
        return await world.version_in(EU, "ORDER#cut-19") == 1

    await eventually(in_eu)
    assert await world.version_in(AP, "ORDER#cut-0") is None
    replicator = world[US].replicator
    assert replicator is not None

    async def noticed() -> bool:
        return bool(replicator.status()["targets"][AP]["state"] == "unreachable")

    await eventually(noticed)
    held_back = time.monotonic() - last_write
    world[AP].proxy.restore()

    async def caught_up() -> bool:
        versions = [await world.version_in(AP, f"ORDER#cut-{n}") for n in range(20)]
        return versions == [1] * 20

    await eventually(caught_up, within=30)

    async def replicating() -> bool:
        return bool(replicator.status()["targets"][AP]["state"] == "replicating")

    await eventually(replicating)
    # The changes held back were sent by US's pipeline when AP returned, and their lag
    # includes the time they waited.
    lag = replicator.status()["targets"][AP]["lag_ms"]
    assert lag["samples"] >= 20
    assert lag["max"] >= held_back * 1000


async def test_a_region_whose_table_came_back_empty_gets_a_full_copy(
    world: ReplicatedRegions,
) -> None:
    await world.put(US, "PRODUCT#old", 3)
    await world.put(EU, "PRODUCT#eu", 2)

    async def everywhere() -> bool:
        return (
            await world.version_in(AP, "PRODUCT#old") == 3
            and await world.version_in(AP, "PRODUCT#eu") == 2
        )

    await eventually(everywhere)
    # AP loses its table (a local endpoint restarted without its data).
    await world[AP].proxy.cut()
    await delete_table(world[AP].client, world.table)
    await ensure_table(world[AP].client, world.table)
    await world.put(US, "PRODUCT#new", 1)
    world[AP].proxy.restore()

    async def restored() -> bool:
        return (
            await world.version_in(AP, "PRODUCT#old") == 3
            and await world.version_in(AP, "PRODUCT#eu") == 2
            and await world.version_in(AP, "PRODUCT#new") == 1
        )

    await eventually(restored, within=30)


async def test_the_topology_control_item_replicates_and_never_goes_back(
    world: ReplicatedRegions,
) -> None:
    us = DynamoProjectionWriter(world[US].client, world.table)
    await us.init_region_control(RegionControl(US, epoch=1))
    eu = DynamoProjectionWriter(world[EU].client, world.table)
    assert await eu.put_region_control(RegionControl(EU, epoch=2))

    async def promoted_everywhere() -> bool:
        controls = [
            await DynamoProjectionReader(world[r].client, world.table).region_control()
            for r in REGIONS
        ]
        return controls == [RegionControl(EU, epoch=2)] * 3

    await eventually(promoted_everywhere)
    # The old primary's stale record (epoch 1) is refused locally and would lose anyway.
    assert not await us.put_region_control(RegionControl(US, epoch=1))


async def test_two_replicators_of_a_region_share_the_work_and_one_takes_over(
    world: ReplicatedRegions,
) -> None:
    first, first_task = world[US].replicator, world[US].task
    assert first is not None and first_task is not None
    async with contextlib.AsyncExitStack() as stack:
        second = await start_replicator(stack, world, US)
        try:

            async def shared() -> bool:
                # Each pipeline is held by one of the two; the other stands by.
                return all(
                    sorted(
                        p.state
                        for r in (first, second)
                        for p in r.pipelines
                        if p.target.region == target
                    )
                    == ["replicating", "standby"]
                    for target in (EU, AP)
                )

            await eventually(shared)
            # The first one stops (its leases given up): the second replicates.
            first_task.cancel()
            await asyncio.gather(first_task, return_exceptions=True)
            await world.put(US, "PRODUCT#takeover", 1)

            async def arrived() -> bool:
                return all([await world.version_in(r, "PRODUCT#takeover") == 1 for r in (EU, AP)])

            await eventually(arrived)
            assert all(p.state == "replicating" for p in second.pipelines)
        finally:
            await stop_replicator(world[US])
