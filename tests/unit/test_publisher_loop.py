"""The stream publisher over in-memory ports: order, checkpoints, resumption, shard lineage,
retries, fencing. (The same loop against moto and a signed HTTP endpoint: integration.)"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.appsync import raise_for_answer
from subscriptions.checkpoints import ready_shards
from subscriptions.lease import LeaseKeeper
from subscriptions.ports import (
    PublicationFailedError,
    PublicationRejectedError,
    PublicationUnreachableError,
)
from subscriptions.stream_publisher import (
    PublisherTimings,
    StreamPublisher,
    settle_publication_start,
)
from tests.support.builders import customer, order, product
from tests.support.fanout_fakes import (
    InMemoryCheckpoints,
    InMemoryLeaseStore,
    InMemoryStream,
    RecordingSink,
    Saved,
    Shard,
    eventually,
)

FAST = PublisherTimings(
    poll_interval=0.01,
    checkpoint_interval=0.02,
    idle_checkpoint_interval=0.5,
    relist_interval=0.05,
    min_backoff=0.01,
    max_backoff=0.05,
    stop_grace=2.0,
)


class World:
    """One region: a stream, the lease and checkpoints it shares with every publisher."""

    def __init__(self) -> None:
        self.stream = InMemoryStream()
        self.leases = InMemoryLeaseStore()
        self.checkpoints = InMemoryCheckpoints(self.leases)
        self.stream.add_shard("s1")

    def publisher(
        self, holder: str, sink: RecordingSink, timings: PublisherTimings = FAST
    ) -> StreamPublisher:
        keeper = LeaseKeeper(self.leases, holder, duration=0.6, renew_every=0.1)
        return StreamPublisher(self.stream, self.checkpoints, keeper, sink, timings)


@contextlib.asynccontextmanager
async def running(publisher: StreamPublisher) -> AsyncIterator[StreamPublisher]:
    publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()


async def test_entity_changes_are_published_in_stream_order_and_control_records_skipped() -> None:
    world, sink = World(), RecordingSink()
    for snapshot in (product(version=1), None, product(version=2), customer(), None, order()):
        world.stream.append("s1", snapshot)
    async with running(world.publisher("a", sink)):
        await sink.wait_for(4)
    assert sink.published == [("p-0001", 1), ("p-0001", 2), ("c-0001", 1), ("o-0001", 1)]
    # Stopping checkpointed everything read, and released the lease.
    assert world.checkpoints.saved["s1"].sequence_number == "s1:000006"
    assert world.leases.row is not None and world.leases.row.expires == 0


async def test_a_restarted_publisher_resumes_from_its_checkpoint() -> None:
    world, first, second = World(), RecordingSink(), RecordingSink()
    for version in (1, 2, 3):
        world.stream.append("s1", product(version=version))
    async with running(world.publisher("a", first)):
        await first.wait_for(3)
    for version in (4, 5):
        world.stream.append("s1", product(version=version))
    async with running(world.publisher("b", second)):
        await second.wait_for(2)
        await asyncio.sleep(0.1)
    assert [v for _, v in second.published] == [4, 5]


async def test_after_a_crash_the_next_holder_republishes_but_skips_nothing() -> None:
    world, first, second = World(), RecordingSink(), RecordingSink()
    never = PublisherTimings(**{**FAST.__dict__, "checkpoint_interval": 60.0})
    for version in (1, 2, 3):
        world.stream.append("s1", product(version=version))
    crashed = world.publisher("a", first, never)
    task = asyncio.create_task(crashed.run())
    await first.wait_for(3)
    task.cancel()  # a crash: no checkpoint, no release
    with contextlib.suppress(asyncio.CancelledError):
        await task
    world.stream.append("s1", product(version=4))
    async with running(world.publisher("b", second)):
        await second.wait_for(4, within=5)
    assert [v for _, v in second.published] == [1, 2, 3, 4]
    assert world.leases.tokens_issued == 2


async def test_a_parent_shard_is_published_to_its_end_before_its_children() -> None:
    world, sink = World(), RecordingSink()
    world.stream.shard_list.clear()
    world.stream.add_shard("child", parent_id="parent")  # listed first on purpose
    world.stream.add_shard("parent")
    world.stream.add_shard("s1")  # listed, no parent: read alongside
    for version in (1, 2, 3, 4):
        world.stream.append("parent", product("p-a", version=version))
    world.stream.close("parent")
    for version in (5, 6):
        world.stream.append("child", product("p-a", version=version))
    async with running(world.publisher("a", sink)):
        await sink.wait_for(6)
    assert [v for _, v in sink.published] == [1, 2, 3, 4, 5, 6]
    assert world.checkpoints.saved["parent"].finished


async def test_an_unavailable_api_is_retried_until_it_takes_the_change() -> None:
    world, sink = World(), RecordingSink()
    sink.failures = [PublicationFailedError("HTTP 503"), PublicationFailedError("HTTP 503")]
    for version in (1, 2):
        world.stream.append("s1", product(version=version))
    async with running(world.publisher("a", sink)):
        await sink.wait_for(2)
    assert sink.published == [("p-0001", 1), ("p-0001", 2)]


async def test_an_api_not_listening_yet_is_waited_for_quietly_and_later_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world, sink = World(), RecordingSink()
    # At start-up (`serve` publishes before its server listens): INFO, not a warning.
    sink.failures = [PublicationUnreachableError("connection refused")] * 2
    world.stream.append("s1", product(version=1))
    with caplog.at_level(logging.INFO, logger="subscriptions.stream_publisher"):
        async with running(world.publisher("a", sink)):
            await sink.wait_for(1)
            starting = [r for r in caplog.records if "does not accept connections" in r.message]
            assert [r.levelno for r in starting] == [logging.INFO, logging.INFO]
            assert "yet" in starting[0].message
            caplog.clear()
            # Once it has answered, an API that accepts no connection is an outage.
            sink.failures = [PublicationUnreachableError("connection refused")]
            world.stream.append("s1", product(version=2))
            await sink.wait_for(2)
    later = [r for r in caplog.records if "does not accept connections" in r.message]
    assert [r.levelno for r in later] == [logging.WARNING]
    assert sink.published == [("p-0001", 1), ("p-0001", 2)]


async def test_a_rejected_publication_is_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world, sink = World(), RecordingSink()
    sink.failures = [PublicationRejectedError("ValidationError")]
    for version in (1, 2):
        world.stream.append("s1", product(version=version))
    with caplog.at_level(logging.ERROR):
        async with running(world.publisher("a", sink)):
            await sink.wait_for(1)
    assert sink.published == [("p-0001", 2)]
    assert "skipping a publication the API rejected" in caplog.text


async def test_a_holder_fenced_out_by_a_newer_token_stops_publishing() -> None:
    world, sink = World(), RecordingSink()
    world.stream.append("s1", product(version=1))
    async with running(world.publisher("a", sink)) as publisher:
        await sink.wait_for(1)
        # Another instance took the lease meanwhile (a paused holder's view of the world).
        assert world.leases.row is not None
        world.leases.row.holder, world.leases.row.token = "b", 99
        world.leases.row.expires += 3600
        world.stream.append("s1", product(version=2))
        await asyncio.sleep(0.3)
        assert not publisher.is_leader
        published_after_takeover = list(sink.published)
        world.stream.append("s1", product(version=3))
        await asyncio.sleep(0.2)
    assert ("p-0001", 3) not in sink.published
    assert len(published_after_takeover) <= 2  # at most the one in hand when fenced
    # Its checkpoints after the takeover were refused.
    saved = world.checkpoints.saved.get("s1")
    assert saved is None or saved.sequence_number == "s1:000001"


def test_ready_shards_follow_the_lineage() -> None:
    shards = [Shard("a"), Shard("b", "a"), Shard("c", "b"), Shard("d", "gone")]
    ids = lambda ready: [s.shard_id for s in ready]  # noqa: E731
    assert ids(ready_shards(shards, finished=set(), busy=set())) == ["a", "d"]
    assert ids(ready_shards(shards, finished={"a"}, busy={"d"})) == ["b"]
    assert ids(ready_shards(shards, finished={"a", "b", "d"}, busy=set())) == ["c"]


@pytest.mark.parametrize(
    ("status", "body", "raised"),
    [
        (200, {"data": {"publishProduct": {"id": "p"}}}, None),
        (200, {"data": None, "errors": [{"errorType": "ServiceUnavailable"}]}, "failed"),
        (200, {"data": None, "errors": [{"errorType": "ValidationError"}]}, "rejected"),
        (401, {"errors": [{"errorType": "UnauthorizedException"}]}, "failed"),
        (400, {"errors": [{"errorType": "MalformedHttpRequestException"}]}, "rejected"),
        (502, {}, "failed"),
        (429, {}, "failed"),
    ],
)
def test_answers_are_sorted_into_retry_and_skip(
    status: int, body: dict[str, object], raised: str | None
) -> None:
    response = httpx.Response(status, json=body)
    if raised is None:
        raise_for_answer("publishProduct", response)
        return
    expected = PublicationFailedError if raised == "failed" else PublicationRejectedError
    with pytest.raises(expected):
        raise_for_answer("publishProduct", response)


async def test_what_the_stream_held_before_the_first_start_is_not_published() -> None:
    world, sink = World(), RecordingSink()
    long_ago = time.time() - 60
    for version in (1, 2):  # the projections rebuilt at start, say
        world.stream.append("s1", product(version=version), created_at=long_ago)
    async with running(world.publisher("a", sink)):
        await eventually(lambda: bool(world.checkpoints.starts))
        starts_at = world.checkpoints.starts[world.stream.arn]
        world.stream.append("s1", product(version=3), created_at=starts_at)
        await sink.wait_for(1)
        await asyncio.sleep(0.05)
    assert sink.published == [("p-0001", 3)]


async def test_a_rebuild_in_the_second_the_api_starts_listening_reaches_no_subscriber() -> None:
    """The API settles the publication start before it listens: a rebuild that ended in the
    same second (stream times are whole seconds on AWS) is not published to the first
    subscribers, and the first change they can see is."""
    world, sink = World(), RecordingSink()
    for version in (1, 2):
        world.stream.append("s1", product(version=version), created_at=time.time())
    starts_at = await settle_publication_start(world.stream.arn, world.checkpoints)
    assert starts_at is not None and time.time() >= starts_at  # the API listens from here
    async with running(world.publisher("a", sink)):
        world.stream.append("s1", product(version=3), created_at=time.time())
        await sink.wait_for(1)
        await asyncio.sleep(0.05)
    assert sink.published == [("p-0001", 3)]


async def test_settling_the_start_claims_the_next_whole_second_once_and_waits_for_it() -> None:
    checkpoints = InMemoryCheckpoints(InMemoryLeaseStore())
    now = [12.3]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    assert (
        await settle_publication_start("arn", checkpoints, clock=lambda: now[0], sleep=sleep) == 13
    )
    assert slept == [0.7] and now[0] == 13.0
    now[0] = 20.5  # another instance, later: the start in force, no wait
    assert (
        await settle_publication_start("arn", checkpoints, clock=lambda: now[0], sleep=sleep) == 13
    )
    assert slept == [0.7]
    assert await settle_publication_start(None, checkpoints, sleep=sleep) is None
    checkpoints.saved["s1"] = Saved(None, finished=False)  # published before starts were kept
    assert await settle_publication_start("older", checkpoints, sleep=sleep) == 0.0
    assert "older" not in checkpoints.starts and slept == [0.7]


async def test_a_stream_published_before_starts_were_kept_is_published_whole() -> None:
    """Checkpoints but no publication start (a deployment that predates them): resume from
    the checkpoints and skip nothing."""
    world, sink = World(), RecordingSink()
    world.stream.append("s1", product(version=1), created_at=time.time() - 60)
    world.checkpoints.saved["s1"] = Saved(None, finished=False)
    async with running(world.publisher("a", sink)):
        await sink.wait_for(1)
    assert sink.published == [("p-0001", 1)]
    assert world.checkpoints.starts == {}


async def test_an_api_that_never_answered_is_an_outage_after_the_start_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world, sink = World(), RecordingSink()
    sink.failures = [PublicationUnreachableError("connection refused")]
    world.stream.append("s1", product(version=1))
    no_grace = dataclasses.replace(FAST, api_start_grace=0.0)
    with caplog.at_level(logging.INFO, logger="subscriptions.stream_publisher"):
        async with running(world.publisher("a", sink, no_grace)):
            await sink.wait_for(1)
    # A publisher whose API has not answered by then is not starting any more: it says so.
    down = [r for r in caplog.records if "does not accept connections" in r.message]
    assert [r.levelno for r in down] == [logging.WARNING]
