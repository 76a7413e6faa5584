"""The composition root: which adapter serves which port, created in the lifespan (never at
import), closed in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import asyncpg

from adapters.dynamodb.client import create_client
from adapters.dynamodb.health import check_table
from adapters.dynamodb.reader import DynamoProjectionReader
from adapters.dynamodb.table import delete_table, ensure_table
from adapters.dynamodb.writer import DynamoProjectionWriter
from adapters.eventbridge import ensure_profile_update_route
from adapters.postgres.health import is_standby, outbox_lag_seconds, ping
from adapters.postgres.migrations import apply_migrations
from adapters.postgres.outbox import PostgresOutbox
from adapters.postgres.pool import create_pool
from adapters.postgres.seed import seed_demo_data
from adapters.postgres.snapshots import PostgresSnapshotSource
from adapters.stepfunctions import ensure_state_machines
from domain.model import RegionControl
from hemisphere.aws_credentials import aws_credentials
from hemisphere.background import cancel_task
from hemisphere.fanout import (
    settle_publication,
    start_broker,
    start_read_cache,
    start_stream_publisher,
)
from hemisphere.metrics import stream_lag_histogram
from hemisphere.readiness import Probe
from hemisphere.runtime import Progress, Runtime, StartupOptions
from hemisphere.runtime_metrics import ReadCacheMetrics, start_sampling
from hemisphere.settings import Settings, SettingsError
from hemisphere.write_path import (
    catalog_port,
    open_write_clients,
    region_databases,
    start_workers,
    write_ports,
)
from projections.announcer import ChangeAnnouncer
from projections.cached_reader import CachedProjectionReader
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.relay import OutboxRelay
from resolvers.context import Ports, Topology
from resolvers.ports import ProjectionReader
from workflows.definitions import definitions

log = logging.getLogger(__name__)

# Projections lag the relational model by the relay's batch time: a few hundred ms. An event
# older than this unapplied means the relay is stuck or absent, and reads are stale.
MAX_OUTBOX_LAG_SECONDS = 10.0


@contextlib.asynccontextmanager
async def start_runtime(
    settings: Settings, options: StartupOptions | None = None
) -> AsyncIterator[Runtime]:
    """The backends behind the resolvers' ports and the processes' workers, for `hemisphere
    serve`, `api` and `worker`. It needs no token secret: the page tokens are the app's, and
    without one there is no stream publisher here."""
    if settings.database_url is None:
        raise SettingsError("DATABASE_URL is not set (hemisphere serve starts an embedded one)")
    options = options or StartupOptions()
    is_primary = settings.region == settings.primary_region

    async with contextlib.AsyncExitStack() as stack:
        pool = await open_pool(stack, settings)
        standby = await is_standby(pool)
        if standby:
            # A secondary region's read-only hot standby: the primary migrates and seeds it.
            log.info("PostgreSQL is a read-only standby: no migrations, no writes from here")
        else:
            async with pool.acquire() as conn:
                applied = await apply_migrations(conn)
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
            if options.seed_demo_data and await seed_demo_data(pool):
                log.info("seeded the demo catalog")

        client = await open_projection_table(stack, settings)
        reader: ProjectionReader = DynamoProjectionReader(client, settings.table_name)
        writer = DynamoProjectionWriter(client, settings.table_name)
        if is_primary:
            # The first start of the primary creates the topology record; later starts leave
            # it as promotions and read-only switches left it.
            await writer.init_region_control(RegionControl(settings.primary_region, epoch=1))
        if options.rebuild_projections:
            written = await rebuild_projections(pool, writer, options.rebuild_progress)
            log.info("rebuilt %d projection items", written)
        if options.serves_api:
            # What the table held until now (the rebuild above, a replica's copy, the demo
            # data) predates every subscriber: never published to them.
            await settle_publication(settings, client)

        broker = await start_broker(stack, settings)
        stream_lag = stream_lag_histogram()
        credentials = aws_credentials(settings)
        publisher = await start_stream_publisher(
            stack, settings, client, credentials, lag=stream_lag.observe
        )
        read_cache = None
        # Kept exact by the region's stream publications: this process's own publisher, or
        # the region's Redis broker that the publisher (role) feeds every instance through.
        if settings.read_cache and (publisher is not None or settings.redis_url is not None):
            read_cache = await start_read_cache(stack, broker)
            reader = CachedProjectionReader(reader, read_cache)

        clients = await open_write_clients(stack, settings, credentials)
        databases = region_databases(stack, settings, pool)
        workflows, profiles, writes = await write_ports(stack, settings, clients, databases)
        if is_primary and settings.run_workers:
            # The outbox lives with the writable relational model: drain it here.
            outbox = PostgresOutbox(pool, settings.database_url)
            stack.push_async_callback(outbox.aclose)
            announcer = ChangeAnnouncer(broker) if settings.announce_writes else None
            relay = OutboxRelay(outbox, Projector(writer, announcer))
            await relay.drain_all()
            stack.push_async_callback(
                cancel_task, asyncio.create_task(relay.run(), name="outbox-relay")
            )
            await start_workers(stack, settings, pool, clients)

        async def restore_aws() -> None:
            await ensure_table(client, settings.table_name)
            if is_primary:
                await writer.init_region_control(RegionControl(settings.primary_region, epoch=1))
            # What open_write_clients ensures at start (idempotent), again.
            await ensure_state_machines(
                clients.sfn,
                clients.sqs,
                definitions(),
                prefix=settings.table_name,
                role_arn=settings.state_machine_role_arn,
            )
            await ensure_profile_update_route(
                clients.events,
                clients.sqs,
                settings.event_bus_name,
                f"{settings.event_bus_name}-profile-updates",
            )
            written = await rebuild_projections(pool, writer)
            log.info("restored the AWS endpoint's resources; rebuilt %d projection items", written)
            # A new table, so a new stream: its rebuild is no change to tell subscribers of.
            await settle_publication(settings, client)

        yield Runtime(
            ports=Ports(
                reader=reader,
                broker=broker,
                topology=Topology(settings.region, settings.primary_region),
                catalog=await catalog_port(
                    stack, settings, pool, clients, databases, is_primary=is_primary
                ),
                workflows=workflows,
                profiles=profiles,
                writes=writes,
            ),
            probes=_probes(settings, pool, client),
            restore_aws=restore_aws,
            read_cache=read_cache,
            collectors=(
                stream_lag,
                *await start_sampling(stack, settings, pool, clients, standby=standby),
                *([ReadCacheMetrics(read_cache)] if read_cache is not None else []),
            ),
        )


async def open_pool(
    stack: contextlib.AsyncExitStack, settings: Settings, *, min_size: int = 2, max_size: int = 10
) -> asyncpg.Pool[Any]:
    """A pool of the region's relational model (DATABASE_URL), closed with the stack."""
    if settings.database_url is None:
        raise SettingsError("DATABASE_URL is not set")
    pool = await create_pool(settings.database_url, min_size=min_size, max_size=max_size)
    stack.push_async_callback(pool.close)
    return pool


async def open_projection_table(
    stack: contextlib.AsyncExitStack, settings: Settings, *, fresh: bool = False
) -> Any:
    """A DynamoDB client of this region, closed with the stack, with the projection table in
    place (with `fresh`, deleted and created again first)."""
    client = await stack.enter_async_context(
        create_client(settings.aws_endpoint_url, settings.region, aws_credentials(settings))
    )
    if fresh:
        await delete_table(client, settings.table_name)
    await ensure_table(client, settings.table_name)
    return client


async def rebuild_projections(
    pool: asyncpg.Pool[Any], writer: DynamoProjectionWriter, progress: Progress | None = None
) -> int:
    """Write every projection item again from the relational model; the number written."""
    return await rebuild(PostgresSnapshotSource(pool), writer, progress=progress)


def _probes(settings: Settings, pool: asyncpg.Pool[Any], dynamodb: Any) -> tuple[Probe, ...]:
    """What /readyz watches: the relational store, the projection table and, in the primary
    (where the outbox is written), whether the projections have caught up with it."""

    async def projections_caught_up() -> None:
        lag = await outbox_lag_seconds(pool)
        if lag > MAX_OUTBOX_LAG_SECONDS:
            raise ProjectionsBehindError(f"the oldest unapplied change is {lag:.0f}s old")

    async def table() -> None:
        await check_table(dynamodb, settings.table_name)

    probes = [
        Probe("postgres", "PostgreSQL", partial(ping, pool)),
        Probe("dynamodb", f"the DynamoDB table {settings.table_name}", table),
    ]
    if settings.region == settings.primary_region:
        probes.append(Probe("projections", "the projections", projections_caught_up))
    return tuple(probes)


class ProjectionsBehindError(RuntimeError):
    """The outbox holds changes the projections have not applied for too long."""
