"""One replication pipeline against in-memory fakes of its ports: what it sends, the lag it
measures, a target that is down, and the full copy when the target lacks its seed mark."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace

import pytest

from regions.ports import (
    ORIGIN_REGION,
    ReplicaUnavailableError,
    StreamRecord,
    WireItem,
)
from regions.replication import ReplicationTimings, TargetReplicator
from subscriptions.lease import LeaseKeeper
from tests.support.fanout_fakes import InMemoryCheckpoints, InMemoryLeaseStore, eventually

US, EU = "us-east-1", "eu-west-1"
FAST = ReplicationTimings(
    poll_interval=0.005, checkpoint_interval=0.01, relist_interval=0.05, max_backoff=0.02
)


def _item(pk: str, version: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": pk}, "sk": {"S": "A"}, "version": {"N": str(version)}}


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_id: str | None = None


@dataclass
class FakeSource:
    """SourceTable: one shard, records appended by the test; the table as a dict."""

    records: list[StreamRecord] = field(default_factory=list)
    table: dict[str, WireItem] = field(default_factory=dict)

    def write(self, pk: str, version: int, at: float) -> None:
        item = _item(pk, version)
        old = self.table.get(pk)
        self.table[pk] = item
        key = {"pk": item["pk"], "sk": item["sk"]}
        self.records.append(StreamRecord(str(len(self.records) + 1), key, item, old, at))

    async def latest_stream(self) -> str | None:
        return "stream-1"

    async def shards(self, stream: str) -> Sequence[Shard]:
        return [Shard("shard-1")]

    async def open_shard(self, stream: str, shard_id: str, after: str | None) -> FakeReader:
        return FakeReader(self, int(after or 0))

    async def scan(self) -> AsyncIterator[WireItem]:
        for item in list(self.table.values()):
            yield item


class FakeReader:
    def __init__(self, source: FakeSource, position: int) -> None:
        self._source = source
        self._position = position

    async def read(self) -> tuple[Sequence[StreamRecord], bool]:
        found = self._source.records[self._position :]
        self._position += len(found)
        return found, False


@dataclass
class FakeReplica:
    """ReplicaTable with the adapter's conditions; `down` makes every call fail."""

    region: str = EU
    items: dict[str, WireItem] = field(default_factory=dict)
    seeded: set[str] = field(default_factory=set)
    down: bool = False
    writes: int = 0

    def _check(self) -> None:
        if self.down:
            raise ReplicaUnavailableError(f"region {self.region} is down")

    async def put_if_newer(self, item: WireItem, version: int) -> bool:
        self._check()
        pk = item["pk"]["S"]
        current = self.items.get(pk)
        if current is not None and int(current["version"]["N"]) >= version:
            return False
        self.items[pk] = item
        self.writes += 1
        return True

    async def delete_if_not_newer(self, key: WireItem, version: int) -> bool:
        self._check()
        current = self.items.get(key["pk"]["S"])
        if current is None or int(current["version"]["N"]) > version:
            return False
        del self.items[key["pk"]["S"]]
        return True

    async def is_seeded(self, source: str) -> bool:
        self._check()
        return source in self.seeded

    async def mark_seeded(self, source: str) -> None:
        self._check()
        self.seeded.add(source)

    def version(self, pk: str) -> int | None:
        item = self.items.get(pk)
        return None if item is None else int(item["version"]["N"])


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _pipeline(
    source: FakeSource,
    replica: FakeReplica,
    clock: Clock,
    timings: ReplicationTimings = FAST,
) -> TargetReplicator:
    leases = InMemoryLeaseStore()
    return TargetReplicator(
        US,
        source,
        replica,
        InMemoryCheckpoints(leases),
        LeaseKeeper(leases, "holder-1"),
        timings,
        clock=clock,
    )


async def _running(pipeline: TargetReplicator) -> asyncio.Task[None]:
    task = asyncio.create_task(pipeline.run())
    await eventually(lambda: pipeline.state == "replicating")
    return task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_changes_are_sent_marked_and_their_lag_measured() -> None:
    source, replica, clock = FakeSource(), FakeReplica(), Clock(1000.0)
    pipeline = _pipeline(source, replica, clock)
    task = await _running(pipeline)
    try:
        source.write("ORDER#1", 1, at=999.75)
        source.write("ORDER#1", 2, at=999.80)  # the same item again: sent once, the newest
        await eventually(lambda: replica.version("ORDER#1") == 2)
        assert replica.items["ORDER#1"][ORIGIN_REGION] == {"S": US}
        await eventually(lambda: pipeline.sent == 1)
        assert pipeline.lag.samples() == [pytest.approx(0.2)]
        assert pipeline.status()["lag_ms"]["last"] == 200.0
        # Both records were read at 1000.0 (the clock stands still): 250 and 200 ms after
        # they were made; the write to the target took none of the lag.
        assert sorted(pipeline.read_lag.samples()) == [pytest.approx(0.2), pytest.approx(0.25)]
    finally:
        await _stop(task)


async def test_a_target_down_holds_its_changes_and_gets_them_when_it_returns() -> None:
    source, replica, clock = FakeSource(), FakeReplica(), Clock(1000.0)
    pipeline = _pipeline(source, replica, clock)
    task = await _running(pipeline)
    try:
        replica.down = True
        source.write("ORDER#2", 1, at=1000.0)
        await eventually(lambda: pipeline.status()["state"] == "unreachable")
        clock.now = 1003.0
        assert pipeline.status()["pending_ms"] == 3000.0
        replica.down = False
        await eventually(lambda: replica.version("ORDER#2") == 1)
        await eventually(lambda: pipeline.status()["pending_ms"] is None)
        assert pipeline.lag.samples() == [pytest.approx(3.0)]
    finally:
        await _stop(task)


async def test_a_target_without_the_seed_mark_gets_a_full_copy_first() -> None:
    source, replica, clock = FakeSource(), FakeReplica(), Clock()
    source.table["PRODUCT#old"] = _item("PRODUCT#old", 4)
    source.table["LEASE#x"] = {"pk": {"S": "LEASE#x"}, "sk": {"S": "LEASE"}}  # bookkeeping
    pipeline = _pipeline(source, replica, clock)
    task = await _running(pipeline)
    try:
        assert replica.version("PRODUCT#old") == 4
        assert "LEASE#x" not in replica.items
        assert replica.seeded == {US}
        assert pipeline.full_copies == 1
        assert pipeline.lag.count == 0  # a copy is not a lag sample
    finally:
        await _stop(task)


class StateWatchingReplica(FakeReplica):
    """Notes the pipeline's state at every write it takes."""

    def __init__(self) -> None:
        super().__init__()
        self.pipeline: TargetReplicator | None = None
        self.states: list[str] = []

    async def put_if_newer(self, item: WireItem, version: int) -> bool:
        assert self.pipeline is not None
        self.states.append(self.pipeline.state)
        return await super().put_if_newer(item, version)


async def test_a_full_copy_reads_as_catching_up_until_it_is_done() -> None:
    source, replica, clock = FakeSource(), StateWatchingReplica(), Clock()
    for n in range(250):  # three batches of the copy
        source.table[f"PRODUCT#{n}"] = _item(f"PRODUCT#{n}", 1)
    pipeline = _pipeline(source, replica, clock)
    replica.pipeline = pipeline
    task = await _running(pipeline)
    try:
        assert pipeline.full_copies == 1 and len(replica.states) == 250
        # `regions status` says what the pipeline does: every write of the copy was made
        # while it read "catching-up", not "replicating" after the first batch landed.
        assert set(replica.states) == {"catching-up"}
    finally:
        await _stop(task)


class SlowReplica(FakeReplica):
    """A far target: every write takes `delay` (a round trip across regions)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def put_if_newer(self, item: WireItem, version: int) -> bool:
        await asyncio.sleep(self.delay)
        return await super().put_if_newer(item, version)


async def test_a_far_target_does_not_hold_back_the_changes_read_meanwhile() -> None:
    """A batch waits one round trip; the changes read while it waits go out beside it, and
    the checkpoint moves only past batches that landed, in order."""
    source, replica = FakeSource(), SlowReplica(delay=0.5)
    # idle_poll_interval: every change read as it comes
    pipeline = _pipeline(source, replica, Clock(), replace(FAST, idle_poll_interval=0.005))
    task = await _running(pipeline)
    try:
        source.write("ORDER#1", 1, at=1000.0)
        await asyncio.sleep(0.05)  # the first batch is on its way
        source.write("ORDER#2", 1, at=1000.0)
        await asyncio.sleep(0.05)
        source.write("ORDER#3", 1, at=1000.0)
        started = asyncio.get_running_loop().time()
        await eventually(lambda: replica.version("ORDER#3") == 1)
        # One round trip after the last change (0.5 s), not behind the first batch's (0.9 s).
        assert asyncio.get_running_loop().time() - started < 0.75
        await eventually(lambda: pipeline.sent == 3)
    finally:
        await _stop(task)


async def test_changes_made_while_the_pipeline_was_stopped_are_catch_up_not_lag() -> None:
    """What waited for the pipeline to run again (its region's return) is reported as
    catch-up; the lag figure stays the running replication's."""
    source, replica, clock = FakeSource(), FakeReplica(), Clock(1000.0)
    leases = InMemoryLeaseStore()
    checkpoints = InMemoryCheckpoints(leases)

    def pipeline() -> TargetReplicator:
        keeper = LeaseKeeper(leases, "holder-1")
        return TargetReplicator(US, source, replica, checkpoints, keeper, FAST, clock=clock)

    first = pipeline()
    task = await _running(first)
    source.write("ORDER#1", 1, at=999.9)
    await eventually(lambda: replica.version("ORDER#1") == 1)
    await eventually(
        lambda: (
            checkpoints.saved.get("shard-1", None) is not None
            and checkpoints.saved["shard-1"].sequence_number == "1"
        )
    )
    await _stop(task)
    await first.release()

    source.write("ORDER#2", 1, at=1000.5)  # made while nobody replicated
    clock.now = 1030.0
    second = pipeline()
    task = await _running(second)
    try:
        await eventually(lambda: replica.version("ORDER#2") == 1)
        source.write("ORDER#3", 1, at=1029.8)
        await eventually(lambda: replica.version("ORDER#3") == 1)
        await eventually(lambda: second.lag.count == 1)
        assert second.full_copies == 0
        assert second.lag.samples() == [pytest.approx(0.2)]
        assert second.catch_up.samples() == [pytest.approx(29.5)]
        assert second.status()["catch_up_ms"]["max"] == 29500.0
    finally:
        await _stop(task)


@dataclass
class SlowCopyCheckReplica(FakeReplica):
    """A target whose "do you hold our copy?" answer takes `check_delay` (a far region)."""

    check_delay: float = 0.0
    checks: int = 0

    async def is_seeded(self, source: str) -> bool:
        self.checks += 1
        await asyncio.sleep(self.check_delay)
        return await super().is_seeded(source)


async def test_the_target_copy_check_goes_beside_the_reads() -> None:
    """Every relist_interval the pipeline asks the target whether it still holds our copy;
    the changes made while that question travels are read and sent without waiting for it."""
    source, replica = FakeSource(), SlowCopyCheckReplica(check_delay=0.0)
    timings = replace(FAST, relist_interval=0.05, idle_poll_interval=0.005)
    pipeline = _pipeline(source, replica, Clock(), timings)

    def slow_down() -> None:
        replica.check_delay = 5.0  # from now on each check takes 5 s

    await _a_change_goes_by_while(pipeline, source, replica, slow_down, lambda: replica.checks)


async def _a_change_goes_by_while(
    pipeline: TargetReplicator,
    source: FakeSource,
    replica: FakeReplica,
    slow_down: Callable[[], None],
    calls: Callable[[], int],
) -> None:
    """Once `slow_down()` has made one of the pipeline's requests take 5 s and such a
    request is on its way (`calls()` counts them), a change made then is in the target
    within a second."""
    task = await _running(pipeline)
    try:
        # Following its stream (a full copy also reads as "replicating"): a first change is
        # through, so the shard is open and read.
        source.write("ORDER#0", 1, at=1000.0)
        await eventually(lambda: replica.version("ORDER#0") == 1)
        slow_down()
        before = calls()
        await eventually(lambda: calls() > before)  # a slow request is on its way
        source.write("ORDER#1", 1, at=1000.0)
        started = asyncio.get_running_loop().time()
        await eventually(lambda: replica.version("ORDER#1") == 1)
        assert asyncio.get_running_loop().time() - started < 1.0
    finally:
        await _stop(task)


async def test_a_steady_stream_to_a_far_target_is_read_as_it_comes() -> None:
    """A change every 30 ms to a target whose writes take 0.5 s: each read finds a batch,
    and about 17 batches are on their way at once; a read must not wait for one to land
    (the drill's load to a region 200 ms away with its endpoint busy: with at most 4 batches
    in flight its reads waited, read lag p99 440-500 ms against a p50 of 40)."""
    source, replica = FakeSource(), SlowReplica(delay=0.5)
    pipeline = _pipeline(source, replica, Clock(), replace(FAST, idle_poll_interval=0.005))
    pipeline._clock = time.time  # the read lag in real time: changes stamped as they are made
    task = await _running(pipeline)
    try:
        # Waiting for a landing costs up to 0.5 s; reading as it comes, a poll (5 ms). The
        # 90th percentile leaves room for a stalled test process.
        assert await _steady_read_lag_p90(source, pipeline) < 0.2
    finally:
        await _stop(task)


async def _steady_read_lag_p90(source: FakeSource, pipeline: TargetReplicator) -> float:
    """A change every 30 ms, 30 of them, each stamped as it is made; once all are sent, the
    90th percentile of their read lag (s)."""
    for n in range(30):
        source.write(f"ORDER#{n}", 1, at=time.time())
        await asyncio.sleep(0.03)
    await eventually(lambda: pipeline.sent == 30)
    lags = sorted(pipeline.read_lag.samples())
    return lags[int(0.9 * len(lags))]


async def test_a_checkpoint_save_goes_beside_the_reads() -> None:
    """A change every 30 ms while each checkpoint save takes 0.4 s: the reads go on while a
    save travels (awaited in the read loop, every save held the changes made meanwhile: the
    drill's lag tail with the source's endpoint busy), and the checkpoints still follow."""
    source, replica = FakeSource(), FakeReplica()
    leases = InMemoryLeaseStore()
    checkpoints = InMemoryCheckpoints(leases)
    pipeline = TargetReplicator(
        US,
        source,
        replica,
        checkpoints,
        LeaseKeeper(leases, "holder-1"),
        replace(FAST, idle_poll_interval=0.005),
        clock=time.time,
    )
    task = await _running(pipeline)
    try:
        checkpoints.save_delay = 0.4  # from now on each save takes 0.4 s
        assert await _steady_read_lag_p90(source, pipeline) < 0.2
        # Saved as it went, and in the end up to the last change.
        assert checkpoints.writes >= 2
        await eventually(lambda: checkpoints.saved["shard-1"].sequence_number == "30", within=3)
    finally:
        await _stop(task)


@dataclass
class SlowListingSource(FakeSource):
    """A source whose shard listing takes `list_delay` (DescribeStream on a busy endpoint)."""

    list_delay: float = 0.0
    listings: int = 0

    async def shards(self, stream: str) -> Sequence[Shard]:
        self.listings += 1
        await asyncio.sleep(self.list_delay)
        return await super().shards(stream)


async def test_the_shard_listing_goes_beside_the_reads() -> None:
    """Every relist_interval the pipeline lists the stream's shards again; the open shards
    are read while that list is on its way."""
    source, replica = SlowListingSource(), FakeReplica()
    timings = replace(FAST, relist_interval=0.05, idle_poll_interval=0.005)
    pipeline = _pipeline(source, replica, Clock(), timings)

    def slow_down() -> None:
        source.list_delay = 5.0  # from now on each listing takes 5 s

    await _a_change_goes_by_while(pipeline, source, replica, slow_down, lambda: source.listings)
