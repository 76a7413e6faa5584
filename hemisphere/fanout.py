"""The subscription fan-out's wiring: the region's broker (Redis when REDIS_URL is set, else
in-process) and the change-stream publisher, which every instance runs and only the holder of
the region's lease lets publish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from botocore.credentials import Credentials

from adapters.appsync import AppSyncPublicationSink
from adapters.aws import StaticCredentials
from adapters.dynamodb.leases import DynamoCheckpointStore, DynamoLeaseStore
from adapters.dynamodb.stream import DynamoChangeStream, create_streams_client, latest_stream_of
from adapters.redis import RedisBroker
from hemisphere.publisher_identity import stream_publisher_credentials
from hemisphere.settings import Settings
from projections.change_feed import ChangeFeed
from projections.read_cache import ReadCache
from schema.publish_documents import publication_documents
from subscriptions.inprocess import InProcessBroker
from subscriptions.lease import LeaseKeeper, unique_holder
from subscriptions.ports import Broker
from subscriptions.stream_publisher import StreamPublisher, lease_name, settle_publication_start

log = logging.getLogger(__name__)


async def start_broker(stack: contextlib.AsyncExitStack, settings: Settings) -> Broker:
    if settings.redis_url is None:
        return InProcessBroker()
    # One channel namespace per region: a region's changes reach that region's instances.
    broker = RedisBroker(settings.redis_url, prefix=f"hemisphere:{settings.region}:")
    stack.push_async_callback(broker.aclose)
    return broker


async def start_read_cache(stack: contextlib.AsyncExitStack, broker: Broker) -> ReadCache:
    """The instance's read cache and the change feed that keeps it exact (stopped with the
    stack). It serves nothing until the feed listens."""
    feed = ChangeFeed(broker)
    cache = ReadCache(feed.liveness)
    task = asyncio.create_task(feed.run(cache), name="read-cache-feed")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
    return cache


async def settle_publication(settings: Settings, dynamodb: Any) -> None:
    """Before this instance listens (and after a rebuild of the projections): the region's
    stream publication starts now, at the latest (subscriptions.stream_publisher)."""
    stream = await latest_stream_of(dynamodb, settings.table_name)
    checkpoints = DynamoCheckpointStore(dynamodb, settings.table_name, lease_name(settings.region))
    await settle_publication_start(stream, checkpoints)


async def start_stream_publisher(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    dynamodb: Any,
    credentials: StaticCredentials | None,
    *,
    lag: Callable[[float], None] | None = None,
) -> StreamPublisher | None:
    """Publish the table's changes as the contract's publish* mutations to
    `settings.publish_url` (the region's API), signed as the region's stream publisher
    (hemisphere.publisher_identity: derived from the token secret the API shares)."""
    if settings.publish_url is None or settings.token_secret is None:
        log.warning(
            "no change-stream publisher: set HEMISPHERE_PUBLISH_URL and "
            "HEMISPHERE_TOKEN_SECRET for subscriptions to see the projections' changes"
        )
        return None
    streams = await stack.enter_async_context(
        create_streams_client(settings.aws_endpoint_url, settings.region, credentials)
    )
    akid, secret = stream_publisher_credentials(settings.token_secret)
    sink = AppSyncPublicationSink(
        settings.publish_url,
        Credentials(akid, secret),
        settings.region,
        documents=publication_documents(),
    )
    stack.push_async_callback(sink.aclose)
    name = lease_name(settings.region)
    publisher = StreamPublisher(
        DynamoChangeStream(dynamodb, streams, settings.table_name),
        DynamoCheckpointStore(dynamodb, settings.table_name, name),
        LeaseKeeper(DynamoLeaseStore(dynamodb, settings.table_name, name), unique_holder()),
        sink,
        lag=lag,
    )
    publisher.start()
    # Closed first: it checkpoints and releases the lease while its clients are still open.
    stack.push_async_callback(publisher.stop)
    return publisher
