"""The publisher's mutations against the real API (in process): signed as AppSync's IAM callers
sign, every field selected, and the snapshot reaching the broker whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from botocore.credentials import Credentials
from starlette.applications import Starlette

from adapters.appsync import AppSyncPublicationSink, publication_input
from domain.aggregates import of_snapshot
from domain.model import Customer, Order, Product
from hemisphere.app import create_app
from hemisphere.publisher_identity import stream_publisher_credentials
from schema.publish_documents import publication_documents
from subscriptions.inprocess import InProcessBroker
from subscriptions.ports import PublicationFailedError
from tests.support.app import IAM_AKID, IAM_SECRET, SETTINGS, fake_runtime, runtime_factory
from tests.support.builders import customer, order, product
from tests.support.fakes import InMemoryReader
from tests.support.fanout_fakes import Collector

URL = "http://api.test/graphql"
SNAPSHOTS = [product(), customer(), order(version=3)]


@pytest.fixture
async def broker_and_app() -> AsyncIterator[tuple[InProcessBroker, Starlette]]:
    broker = InProcessBroker()
    app = create_app(
        SETTINGS, runtime_factory=runtime_factory(fake_runtime(InMemoryReader(), broker))
    )
    async with app.router.lifespan_context(app):
        yield broker, app


@pytest.fixture
async def sink(
    broker_and_app: tuple[InProcessBroker, Starlette],
) -> AsyncIterator[AppSyncPublicationSink]:
    transport = httpx.ASGITransport(app=broker_and_app[1])
    sink = AppSyncPublicationSink(
        URL,
        Credentials(IAM_AKID, IAM_SECRET),
        "us-east-1",
        documents=publication_documents(),
        transport=transport,
    )
    yield sink
    await sink.aclose()


def _shape(value: Any) -> Any:
    """A JSON value's keys, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return None


@pytest.mark.parametrize("snapshot", SNAPSHOTS, ids=lambda s: type(s).__name__)
async def test_a_publication_reaches_the_broker_whole(
    broker_and_app: tuple[InProcessBroker, Starlette],
    sink: AppSyncPublicationSink,
    snapshot: Product | Customer | Order,
) -> None:
    broker, _ = broker_and_app
    collector = await Collector.start(broker.subscribe(of_snapshot(snapshot).publish_mutation))
    await sink.publish(snapshot)
    assert await collector.wait_for(1) == [publication_input(snapshot)]
    await collector.stop()


@pytest.mark.parametrize("snapshot", SNAPSHOTS, ids=lambda s: type(s).__name__)
async def test_the_mutation_selects_every_field_of_its_type(
    broker_and_app: tuple[InProcessBroker, Starlette],
    sink: AppSyncPublicationSink,
    snapshot: Product | Customer | Order,
) -> None:
    mutation = of_snapshot(snapshot).publish_mutation
    body = orjson.dumps(
        {
            "query": publication_documents()[mutation],
            "variables": {"input": publication_input(snapshot)},
        }
    )
    transport = httpx.ASGITransport(app=broker_and_app[1])
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post(URL, content=body, headers=sink.signed_headers(body))
    selected = response.json()["data"][mutation]
    assert _shape(selected) == _shape(publication_input(snapshot))


async def test_wrong_credentials_are_a_failure_to_retry_not_a_change_to_skip(
    broker_and_app: tuple[InProcessBroker, Starlette],
) -> None:
    sink = AppSyncPublicationSink(
        URL,
        Credentials(IAM_AKID, "not-the-secret"),
        "us-east-1",
        documents=publication_documents(),
        transport=httpx.ASGITransport(app=broker_and_app[1]),
    )
    try:
        with pytest.raises(PublicationFailedError, match="HTTP 401"):
            await sink.publish(product())
    finally:
        await sink.aclose()


async def test_only_the_stream_publishers_principal_feeds_the_version_gate(
    broker_and_app: tuple[InProcessBroker, Starlette],
) -> None:
    """A forged publishProduct (version 999, signed by an operator's IAM key) is delivered, as
    AppSync delivers any publish call, but cannot silence the product's real changes; a replay
    by the region's stream publisher (its own principal) is not delivered twice."""
    broker, app = broker_and_app
    assert SETTINGS.token_secret is not None

    def signer(akid: str, secret: str) -> AppSyncPublicationSink:
        return AppSyncPublicationSink(
            URL,
            Credentials(akid, secret),
            "us-east-1",
            documents=publication_documents(),
            transport=httpx.ASGITransport(app=app),
        )

    operator = signer(IAM_AKID, IAM_SECRET)
    publisher = signer(*stream_publisher_credentials(SETTINGS.token_secret))
    collector = await Collector.start(broker.subscribe("publishProduct"))
    try:
        await publisher.publish(product(version=4))
        await operator.publish(product(version=999, name="forged"))
        await publisher.publish(product(version=5))
        await publisher.publish(product(version=5))  # a replay after a restart
        await publisher.publish(product(version=6))
        received = await collector.wait_for(4)
        assert [m["version"] for m in received] == [4, 999, 5, 6]
    finally:
        await collector.stop()
        await operator.aclose()
        await publisher.aclose()
