"""An API instance with the region's fan-out wired in: what bootstrap will do once it wires
the Redis broker and the stream publisher (no tests here).

    python -m tests.support.fanout_runner --port 8101 [--lease 5 --renew 1.5 --poll 0.25]

Configuration comes from the environment as for `hemisphere serve` with external backends
(DATABASE_URL, AWS_ENDPOINT_URL, REDIS_URL, HEMISPHERE_*). `fanout_runtime` is the wiring to
move into hemisphere/bootstrap.start_runtime.

GET /_fanout tells a test whether the instance holds the publisher's lease.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial

import uvicorn
from botocore.credentials import Credentials
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.dynamodb.client import create_client
from adapters.dynamodb.stream import (
    DynamoChangeStream,
    DynamoCheckpointStore,
    DynamoLeaseStore,
    create_streams_client,
)
from adapters.redis import RedisBroker
from hemisphere.app import create_app
from hemisphere.bootstrap import aws_credentials, start_runtime
from hemisphere.runtime import Runtime
from hemisphere.settings import Settings, SettingsError
from subscriptions.lease import LeaseKeeper, unique_holder
from subscriptions.stream_publisher import (
    AppSyncPublicationSink,
    PublisherTimings,
    StreamPublisher,
    lease_name,
)


@contextlib.asynccontextmanager
async def fanout_runtime(
    settings: Settings,
    *,
    publish_url: str,
    lease_seconds: float = 5.0,
    renew_seconds: float = 1.5,
    timings: PublisherTimings | None = None,
    state: dict[str, object] | None = None,
) -> AsyncIterator[Runtime]:
    """bootstrap's runtime, with the Redis broker and the region's stream publisher."""
    if settings.redis_url is None:
        raise SettingsError("REDIS_URL is not set")
    if not settings.iam_credentials:
        raise SettingsError("HEMISPHERE_IAM_CREDENTIALS is not set: the publisher signs with it")
    async with start_runtime(settings) as runtime, contextlib.AsyncExitStack() as stack:
        # ---- to move into bootstrap.start_runtime, after the table exists -----------------
        broker = RedisBroker(settings.redis_url, prefix=f"hemisphere:{settings.region}:")
        stack.push_async_callback(broker.aclose)
        credentials = aws_credentials(settings)
        client = await stack.enter_async_context(
            create_client(settings.aws_endpoint_url, settings.region, credentials)
        )
        streams = await stack.enter_async_context(
            create_streams_client(settings.aws_endpoint_url, settings.region, credentials)
        )
        akid, secret = next(iter(settings.iam_credentials.items()))
        sink = AppSyncPublicationSink(publish_url, Credentials(akid, secret), settings.region)
        stack.push_async_callback(sink.aclose)
        name = lease_name(settings.region)
        publisher = StreamPublisher(
            DynamoChangeStream(client, streams, settings.table_name),
            DynamoCheckpointStore(client, settings.table_name, name),
            LeaseKeeper(
                DynamoLeaseStore(client, settings.table_name, name),
                unique_holder(),
                duration=lease_seconds,
                renew_every=renew_seconds,
            ),
            sink,
            timings,
        )
        publisher.start()
        stack.push_async_callback(publisher.stop)  # runs first: checkpoint, release the lease
        # -----------------------------------------------------------------------------------
        if state is not None:
            state["publisher"] = publisher
        yield replace(runtime, broker=broker)


def status_route(state: dict[str, object]) -> Route:
    """GET /_fanout: whether this instance holds the publisher's lease (test-only)."""

    async def status(request: Request) -> Response:
        publisher = state.get("publisher")
        assert isinstance(publisher, StreamPublisher)
        return JSONResponse(
            {"leader": publisher.is_leader, "holder": publisher.holder, "pid": os.getpid()}
        )

    return Route("/_fanout", status, methods=["GET"])


def build_app(
    settings: Settings, port: int, lease: float, renew: float, poll: float | None = None
) -> Starlette:
    state: dict[str, object] = {}
    app = create_app(
        settings,
        runtime_factory=partial(
            fanout_runtime,
            publish_url=f"http://127.0.0.1:{port}/graphql",
            lease_seconds=lease,
            renew_seconds=renew,
            timings=None if poll is None else PublisherTimings(poll_interval=poll),
            state=state,
        ),
    )
    app.router.routes.append(status_route(state))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lease", type=float, default=5.0)
    parser.add_argument("--renew", type=float, default=1.5)
    parser.add_argument("--poll", type=float, default=None, help="the publisher's poll interval")
    args = parser.parse_args()
    settings = Settings.from_env(os.environ)
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: one line per publication.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = build_app(settings, args.port, args.lease, args.renew, args.poll)
    # As `hemisphere serve` runs it: uvicorn's loop (uvloop), websockets-sansio.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="on",
        ws="websockets-sansio",
    )


if __name__ == "__main__":
    main()
