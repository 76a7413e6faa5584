"""The stream publisher against the local AWS endpoint (moto) and a fake API that checks
SigV4 signatures as AppSync does: order, checkpoint resumption, lease takeover."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from botocore.credentials import Credentials
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.appsync import AppSyncPublicationSink
from adapters.dynamodb.client import StaticCredentials, create_client
from adapters.dynamodb.leases import DynamoCheckpointStore, DynamoLeaseStore, lease_key
from adapters.dynamodb.stream import DynamoChangeStream, create_streams_client
from adapters.dynamodb.table import ensure_table
from adapters.dynamodb.writer import DynamoProjectionWriter
from domain.errors import UnauthorizedError
from domain.events import CustomerChanged, Event, OrderChanged, ProductChanged
from domain.model import RegionControl
from hemisphere.http.sigv4 import verify_sigv4
from schema.publish_documents import publication_documents
from subscriptions.lease import LeaseKeeper
from subscriptions.stream_publisher import (
    PublisherTimings,
    StreamPublisher,
    lease_name,
    settle_publication_start,
)
from tests.support.builders import customer, order, product
from tests.support.fanout_fakes import eventually

pytestmark = pytest.mark.integration

LOCAL = StaticCredentials("hemisphere-local", "hemisphere-local")
REGION = "us-east-1"
# One IAM principal per publisher, so the fake API can tell who published what.
PRINCIPALS = {"AKIAPUBLISHERA": "secret-a", "AKIAPUBLISHERB": "secret-b"}
TIMINGS = PublisherTimings(
    poll_interval=0.05, checkpoint_interval=0.2, relist_interval=1.0, max_backoff=0.5
)


@dataclass
class FakeApi:
    """POST /graphql: verifies SigV4 (hemisphere.http.sigv4), records each publication."""

    received: list[tuple[str, str, str, int]] = field(default_factory=list)  # akid, mutation..
    refused: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        async def graphql(request: Request) -> Response:
            body = await request.body()
            headers = {k.decode(): v.decode() for k, v in request.scope["headers"]}
            try:
                akid = verify_sigv4(
                    method="POST",
                    url=f"http://{headers['host']}{request.url.path}",
                    headers=headers,
                    body=body,
                    credentials=PRINCIPALS,
                    region=REGION,
                )
            except UnauthorizedError as error:
                self.refused += 1
                return JSONResponse({"errors": [{"message": error.message}]}, status_code=401)
            payload = orjson.loads(body)
            mutation = payload["query"].split("{", 1)[1].split("(", 1)[0].strip()
            publication = payload["variables"]["input"]
            self.received.append((akid, mutation, publication["id"], publication["version"]))
            self.arrived.set()
            return JSONResponse({"data": {mutation: publication}})

        return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])

    def versions(self, item_id: str) -> list[int]:
        return [version for _, _, i, version in self.received if i == item_id]

    async def wait(self, condition: Any, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not condition():
                self.arrived.clear()
                await self.arrived.wait()


@dataclass
class Region:
    client: Any
    streams: Any
    table: str
    writer: DynamoProjectionWriter
    api: FakeApi

    def publisher(self, akid: str, *, duration: float = 5.0, renew: float = 1.5) -> StreamPublisher:
        name = lease_name(REGION)
        sink = AppSyncPublicationSink(
            "http://api.test/graphql",
            Credentials(akid, PRINCIPALS[akid]),
            REGION,
            documents=publication_documents(),
            transport=httpx.ASGITransport(app=self.api.app()),
        )
        keeper = LeaseKeeper(
            DynamoLeaseStore(self.client, self.table, name),
            f"holder-{akid}",
            duration=duration,
            renew_every=renew,
        )
        return StreamPublisher(
            DynamoChangeStream(self.client, self.streams, self.table),
            DynamoCheckpointStore(self.client, self.table, name),
            keeper,
            sink,
            TIMINGS,
        )

    async def write(self, *events: Event) -> None:
        for event in events:  # one by one: a batch keeps only each item's newest version
            await self.writer.write([event])

    async def publish_from_the_beginning(self) -> None:
        """As for a stream published before: every record is published, whenever written
        (the tests of order and resumption write first, then start a publisher)."""
        stream = await DynamoChangeStream(self.client, self.streams, self.table).latest_stream()
        assert stream is not None
        store = DynamoCheckpointStore(self.client, self.table, lease_name(REGION))
        assert await store.claim_publication_start(stream, 0) == 0

    async def settle_as_the_api_does(self) -> float:
        """What every API instance does before it listens (hemisphere.fanout): the
        publication start is claimed and has passed."""
        stream = await DynamoChangeStream(self.client, self.streams, self.table).latest_stream()
        store = DynamoCheckpointStore(self.client, self.table, lease_name(REGION))
        starts_at = await settle_publication_start(stream, store)
        assert starts_at is not None
        return starts_at

    async def fencing_token(self) -> int:
        key = {k: {"S": v} for k, v in lease_key(lease_name(REGION)).items()}
        item = (await self.client.get_item(TableName=self.table, Key=key))["Item"]
        return int(item["fencingToken"]["N"])


@pytest.fixture
async def region(aws_endpoint: str, table_name: str) -> AsyncIterator[Region]:
    async with (
        create_client(aws_endpoint, REGION, LOCAL) as client,
        create_streams_client(aws_endpoint, REGION, LOCAL) as streams,
    ):
        await ensure_table(client, table_name)
        yield Region(
            client, streams, table_name, DynamoProjectionWriter(client, table_name), FakeApi()
        )


@contextlib.asynccontextmanager
async def running(publisher: StreamPublisher) -> AsyncIterator[StreamPublisher]:
    publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()


async def test_changed_items_reach_the_api_signed_and_in_order(region: Region) -> None:
    await region.publish_from_the_beginning()
    await region.writer.init_region_control(RegionControl(REGION, epoch=1))  # a control item
    await region.write(
        *(ProductChanged(product(version=v)) for v in (1, 2, 3)),
        CustomerChanged(customer()),
        OrderChanged(order(version=1)),
        OrderChanged(order(version=2)),
    )
    async with running(region.publisher("AKIAPUBLISHERA")):
        await region.api.wait(lambda: len(region.api.received) >= 6)
        await asyncio.sleep(0.5)  # the lease renewals and checkpoints are stream records too
    assert region.api.refused == 0
    assert [(m, i, v) for _, m, i, v in region.api.received] == [
        ("publishProduct", "p-0001", 1),
        ("publishProduct", "p-0001", 2),
        ("publishProduct", "p-0001", 3),
        ("publishCustomer", "c-0001", 1),
        ("publishOrder", "o-0001", 1),
        ("publishOrder", "o-0001", 2),
    ]


async def test_a_restarted_publisher_resumes_from_its_checkpoint(region: Region) -> None:
    await region.publish_from_the_beginning()
    await region.write(*(ProductChanged(product(version=v)) for v in (1, 2, 3)))
    async with running(region.publisher("AKIAPUBLISHERA")):
        await region.api.wait(lambda: len(region.api.received) >= 3)
    await region.write(*(ProductChanged(product(version=v)) for v in (4, 5)))
    async with running(region.publisher("AKIAPUBLISHERB")):
        await region.api.wait(lambda: len(region.api.received) >= 5)
        await asyncio.sleep(0.5)
    by_b = [v for akid, _, _, v in region.api.received if akid == "AKIAPUBLISHERB"]
    assert by_b == [4, 5]  # neither a change skipped nor one published twice


async def test_the_lease_moves_within_seconds_when_its_holder_dies_and_no_change_is_skipped(
    region: Region,
) -> None:
    # A renewal may come late on a loaded machine (the whole suite on two cores), and one
    # renewal that the local endpoint leaves unanswered holds the next ones back for its
    # client's timeouts (up to 8 s: two attempts of 1 s connect + 3 s read): the lease
    # outlives that, so only the holder's death moves it (a 6 s lease lapsed once in CI).
    duration, renew = 10.0, 1.0
    await region.settle_as_the_api_does()
    a = region.publisher("AKIAPUBLISHERA", duration=duration, renew=renew)
    b = region.publisher("AKIAPUBLISHERB", duration=duration, renew=renew)
    tasks = {a: a.start(), b: b.start()}
    try:
        await eventually(lambda: a.is_leader or b.is_leader)
        holder, standby = (a, b) if a.is_leader else (b, a)
        await region.write(*(ProductChanged(product(version=v)) for v in (1, 2, 3)))
        await region.api.wait(lambda: region.api.versions("p-0001")[-1:] == [3])
        assert not standby.is_leader

        tasks[holder].cancel()  # the holder dies: no checkpoint, no release
        died = time.monotonic()
        await region.write(*(ProductChanged(product(version=v)) for v in (4, 5, 6)))
        await region.api.wait(lambda: region.api.versions("p-0001")[-1:] == [6], within=20)
        took_over_in = time.monotonic() - died

        assert standby.is_leader
        # Within seconds: the lease's duration, one renewal, and slack for a loaded machine.
        assert took_over_in < duration + renew + 4, took_over_in
        assert await region.fencing_token() == 2
        versions = region.api.versions("p-0001")
        assert set(versions) == {1, 2, 3, 4, 5, 6}  # nothing skipped; repeats are allowed
        after_takeover = versions[versions.index(4) :]
        assert after_takeover == sorted(after_takeover)
    finally:
        await a.stop()
        await b.stop()


async def test_the_first_publisher_skips_what_the_stream_recorded_before_it_started(
    region: Region,
) -> None:
    """The projections rebuilt at start are in the stream: replaying them would tell the
    first subscribers of changes nobody made. The API settles the publication start before it
    listens, in the same second as the rebuild here; what is written after it is published,
    and a publisher that crashed before its first checkpoint keeps the same start."""
    await region.write(*(ProductChanged(product(version=v)) for v in (1, 2)))
    await region.settle_as_the_api_does()
    first = region.publisher("AKIAPUBLISHERA")
    task = first.start()
    try:
        await eventually(lambda: first.is_leader)
        await region.write(ProductChanged(product(version=3)))
        await region.api.wait(lambda: region.api.versions("p-0001") == [3])
    finally:
        task.cancel()  # a crash: no release
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await region.write(ProductChanged(product(version=4)))
    async with running(region.publisher("AKIAPUBLISHERB", duration=5.0)):
        await region.api.wait(lambda: region.api.versions("p-0001")[-1:] == [4], within=15)
        await asyncio.sleep(0.5)
    assert 1 not in region.api.versions("p-0001") and 2 not in region.api.versions("p-0001")
    assert set(region.api.versions("p-0001")) == {3, 4}


class NotListeningYet(httpx.AsyncBaseTransport):
    """The region's API before it listens: every connection refused until `opened` is set,
    then the fake API answers. Counts the attempts."""

    def __init__(self, api: FakeApi) -> None:
        self.attempts = 0
        self.opened = False
        self._api = httpx.ASGITransport(app=api.app())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.opened:
            self.attempts += 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self._api.handle_async_request(request)


async def test_before_the_api_listens_the_publisher_backs_off_and_then_delivers(
    region: Region,
) -> None:
    """Started before its API (a publisher container beside an API still starting), it
    retries with exponential backoff rather than hammering the port, and the change it held
    arrives as soon as the API listens."""
    await region.publish_from_the_beginning()
    await region.write(ProductChanged(product(version=1)))
    transport = NotListeningYet(region.api)
    sink = AppSyncPublicationSink(
        "http://api.test/graphql",
        Credentials("AKIAPUBLISHERA", PRINCIPALS["AKIAPUBLISHERA"]),
        REGION,
        documents=publication_documents(),
        transport=transport,
    )
    name = lease_name(REGION)
    publisher = StreamPublisher(
        DynamoChangeStream(region.client, region.streams, region.table),
        DynamoCheckpointStore(region.client, region.table, name),
        LeaseKeeper(DynamoLeaseStore(region.client, region.table, name), "holder-early"),
        sink,
        PublisherTimings(poll_interval=0.05),  # the production backoff: 0.1 s doubling to 5 s
    )
    async with running(publisher):
        await eventually(lambda: transport.attempts >= 1, within=10)
        await asyncio.sleep(4)
        # 0, 0.1, 0.3, 0.7, 1.5, 3.1 s: a handful of attempts in 4 s, not hundreds.
        assert 2 <= transport.attempts <= 8, transport.attempts
        transport.opened = True
        await region.api.wait(lambda: len(region.api.received) >= 1, within=10)
    assert [(m, i, v) for _, m, i, v in region.api.received] == [("publishProduct", "p-0001", 1)]
