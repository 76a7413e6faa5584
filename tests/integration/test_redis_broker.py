"""RedisBroker on a real Redis: delivery across instances, one subscription per channel and
instance, and what a Redis restart looks like to subscribers (a logged gap, nothing else)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from botocore.credentials import Credentials
from redis.asyncio import Redis

from adapters.appsync import AppSyncPublicationSink
from adapters.redis import BrokerUnavailableError, RedisBroker, redacted
from hemisphere.app import create_app
from hemisphere.localstack import free_port
from schema.publish_documents import publication_documents
from subscriptions.ports import PublicationFailedError
from tests.support.app import IAM_AKID, IAM_SECRET, SETTINGS, fake_runtime, runtime_factory
from tests.support.builders import product
from tests.support.fakes import InMemoryReader
from tests.support.fanout_fakes import Collector, eventually
from tests.support.fanout_redis import PrivateRedis

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix() -> str:
    """Channels of this test's own, on a Redis other tests may share."""
    return f"hemisphere-test-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def brokers(redis_url: str, prefix: str) -> AsyncIterator[tuple[RedisBroker, RedisBroker]]:
    a, b = RedisBroker(redis_url, prefix=prefix), RedisBroker(redis_url, prefix=prefix)
    yield a, b
    await a.aclose()
    await b.aclose()


async def test_a_publication_reaches_the_subscribers_of_every_instance(
    brokers: tuple[RedisBroker, RedisBroker],
) -> None:
    a, b = brokers
    on_a = await Collector.start(a.subscribe("publishProduct"))
    on_b = [await Collector.start(b.subscribe("publishProduct")) for _ in range(3)]
    other = await Collector.start(b.subscribe("publishOrder"))
    async with asyncio.timeout(5):
        await a.until_listening("publishProduct")
        await b.until_listening("publishProduct")
    await a.publish("publishProduct", {"id": "p-1", "version": 1})
    for collector in (on_a, *on_b):
        assert await collector.wait_for(1) == [{"id": "p-1", "version": 1}]
    await asyncio.sleep(0.05)
    assert other.received == []
    for collector in (on_a, *on_b, other):
        await collector.stop()


async def test_each_instance_subscribes_a_channel_once_and_drops_it_with_its_last_subscriber(
    brokers: tuple[RedisBroker, RedisBroker], redis_url: str, prefix: str
) -> None:
    _, b = brokers
    channel = f"{prefix}publishOrder"
    admin = Redis.from_url(redis_url)
    try:
        first = await Collector.start(b.subscribe("publishOrder"))
        second = await Collector.start(b.subscribe("publishOrder"))
        await eventually(lambda: b.listening("publishOrder"))
        assert await admin.pubsub_numsub(channel) == [(channel.encode(), 1)]
        await first.stop()
        await asyncio.sleep(0.05)
        assert await admin.pubsub_numsub(channel) == [(channel.encode(), 1)]
        await second.stop()
        await eventually(lambda: not b.listening("publishOrder"))
        # The broker stops listening when it sends UNSUBSCRIBE; Redis counts the channel's
        # subscribers once it has processed it, a moment later on a loaded machine.
        for _ in range(100):
            if await admin.pubsub_numsub(channel) == [(channel.encode(), 0)]:
                break
            await asyncio.sleep(0.02)
        assert await admin.pubsub_numsub(channel) == [(channel.encode(), 0)]
    finally:
        await admin.aclose()


async def test_publishing_without_redis_fails_fast_with_a_named_error() -> None:
    broker = RedisBroker(f"redis://:secret@127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError) as raised:
        await broker.publish("publishOrder", {"id": "o-1"})
    assert time.monotonic() - started < 3
    assert raised.value.error_type == "ServiceUnavailable"
    assert "secret" not in str(raised.value)
    await broker.aclose()


def test_urls_are_logged_without_their_password() -> None:
    assert redacted("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert redacted("redis://user:pw@host/0") == "redis://user:***@host/0"
    assert redacted("unix:///tmp/redis.sock") == "unix:///tmp/redis.sock"


async def test_subscribers_keep_receiving_after_redis_restarts_and_the_gap_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with PrivateRedis() as server:
        publisher = RedisBroker(server.url)
        instance = RedisBroker(server.url, liveness_interval=0.5, max_backoff=0.2)
        subscriber = await Collector.start(instance.subscribe("publishProduct"))
        await eventually(lambda: instance.listening("publishProduct"))
        await publisher.publish("publishProduct", {"id": "p-1", "version": 1})
        await subscriber.wait_for(1)

        with caplog.at_level(logging.WARNING, logger="adapters.redis"):
            server.stop()
            with pytest.raises(BrokerUnavailableError):
                await publisher.publish("publishProduct", {"id": "p-1", "version": 2})
            await eventually(lambda: not instance.listening("publishProduct"))
            await asyncio.sleep(0.3)  # a gap a person could see in the log
            server.start()
            await eventually(lambda: instance.listening("publishProduct"), within=10)
            await publisher.publish("publishProduct", {"id": "p-1", "version": 3})
            received = await subscriber.wait_for(2)

        assert [m["version"] for m in received] == [1, 3]
        assert not subscriber.task.done()  # no error, no end: only the gap
        gaps = [r for r in caplog.records if "gap from" in r.getMessage()]
        assert len(gaps) == 1
        assert gaps[0].levelno == logging.WARNING
        assert "publishProduct" in gaps[0].getMessage()
        await subscriber.stop()
        await publisher.aclose()
        await instance.aclose()


async def test_a_publish_mutation_while_redis_is_down_is_a_failure_the_publisher_retries() -> None:
    broker = RedisBroker(f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(
        SETTINGS,
        runtime_factory=runtime_factory(fake_runtime(InMemoryReader(), broker)),
    )
    async with app.router.lifespan_context(app):
        sink = AppSyncPublicationSink(
            "http://api.test/graphql",
            Credentials(IAM_AKID, IAM_SECRET),
            "us-east-1",
            documents=publication_documents(),
            transport=httpx.ASGITransport(app=app),
        )
        try:
            with pytest.raises(PublicationFailedError, match="ServiceUnavailable"):
                await sink.publish(product())
        finally:
            await sink.aclose()
    await broker.aclose()
