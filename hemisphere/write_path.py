"""The write side's wiring: the sagas on Step Functions, async mutations on EventBridge, and
the workers that run them. Read local, write global: a secondary region sends its writes to
the primary's Step Functions and event bus, and turns read-only when it cannot reach them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from adapters.aws import StaticCredentials, aws_client, client_config
from adapters.dynamodb.client import create_client as create_dynamodb_client
from adapters.dynamodb.topology import DynamoTopologyStore
from adapters.eventbridge import (
    DELETE_LINGER_SECONDS,
    EventBridgeProfileUpdates,
    ensure_profile_update_route,
)
from adapters.eventbridge import create_client as create_aws_client
from adapters.payments import HttpPaymentProvider
from adapters.postgres.catalog import PostgresCatalog, PostgresCatalogAt
from adapters.postgres.checkout_intents import PostgresCheckoutIntentsAt
from adapters.postgres.pool import RegionPool
from adapters.postgres.profiles import PostgresProfileStore
from adapters.postgres.saga import PostgresSagaStore
from adapters.postgres.topology import EpochFence, PostgresTopology
from adapters.sqs import SqsQueueDepth, SqsTaskQueue
from adapters.stepfunctions import (
    SagaMachines,
    StepFunctionsEndpoint,
    StepFunctionsOrderWorkflows,
    StepFunctionsSagaEngine,
    StepFunctionsTaskAnswers,
    ensure_state_machines,
)
from adapters.stepfunctions import create_client as create_sfn_client
from domain.model import RegionControl
from hemisphere.aws_credentials import aws_credentials
from hemisphere.background import cancel_task
from hemisphere.settings import Settings, SettingsError
from regions.checkout_intents import RecordedCheckouts
from regions.control import TopologyWatcher, WriteFence
from regions.routing import (
    CatalogAt,
    CheckoutIntentsAt,
    FencedCatalog,
    RoutedCatalog,
    RoutedCheckoutIntents,
    RoutedOrderWorkflows,
    RoutedProfileUpdates,
    WriteEndpoints,
    write_target,
)
from regions.write_availability import PrimaryEndpoint, PrimaryProbe, WriteAvailability
from resolvers.ports import Catalog, OrderWorkflows, ProfileUpdates
from workflows.activities import Activities
from workflows.admission import AdmittedOrderWorkflows, SagaAdmission
from workflows.definitions import definitions
from workflows.profile_updates import run_profile_update_worker
from workflows.reconciler import run_reconciler
from workflows.worker import run_worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AwsClients:
    """This region's clients of the write-side services."""

    sfn: Any
    sqs: Any
    events: Any
    machines: SagaMachines
    profile_queue_url: str
    # The mutation start's check and where writes go now (regions.control).
    fence: WriteFence


async def open_write_clients(
    stack: contextlib.AsyncExitStack, settings: Settings, credentials: StaticCredentials | None
) -> AwsClients:
    """Clients for this region, with the state machines, task queue and event route in place
    (idempotent: every instance does it at start; every region has them, so any can be
    promoted)."""
    endpoint, region = settings.aws_endpoint_url, settings.region
    sfn = await stack.enter_async_context(create_sfn_client(endpoint, region, credentials))
    sqs = await stack.enter_async_context(create_aws_client("sqs", endpoint, region, credentials))
    events = await stack.enter_async_context(
        create_aws_client("events", endpoint, region, credentials)
    )
    machines = await ensure_state_machines(
        sfn,
        sqs,
        definitions(),
        prefix=settings.table_name,
        role_arn=settings.state_machine_role_arn,
    )
    queue_url = await ensure_profile_update_route(
        events, sqs, settings.event_bus_name, f"{settings.event_bus_name}-profile-updates"
    )
    fence = await start_topology_watch(stack, settings, credentials)
    return AwsClients(sfn, sqs, events, machines, queue_url, fence)


async def start_topology_watch(
    stack: contextlib.AsyncExitStack, settings: Settings, credentials: StaticCredentials | None
) -> WriteFence:
    """Read this region's replicated control item now and every second from now on (one
    GetItem, on a client of its own so that it never queues behind reads), and decide from
    it whether this process may write and where writes go."""
    dynamodb = await stack.enter_async_context(
        create_dynamodb_client(settings.aws_endpoint_url, settings.region, credentials)
    )
    store = DynamoTopologyStore(dynamodb, settings.table_name, settings.region)
    watcher = TopologyWatcher(store.read)
    known = await watcher.refresh()
    epoch = settings.epoch
    if epoch is None:
        # Started without an epoch: the one the record names for this region's primary
        # (a restart after a promotion to it), else the first.
        names_it = known is not None and known.primary_region == settings.primary_region
        epoch = known.epoch if known is not None and names_it else 1
    stack.push_async_callback(
        cancel_task, asyncio.create_task(watcher.run(), name="topology-watcher")
    )
    return WriteFence(settings.region, RegionControl(settings.primary_region, epoch), watcher)


def write_endpoints(settings: Settings) -> WriteEndpoints:
    """What regions.routing.write_target decides from, read from the settings."""
    return WriteEndpoints(
        region=settings.region,
        primary_region=settings.primary_region,
        own=settings.aws_endpoint_url,
        primary=settings.primary_aws_endpoint_url,
        by_region=settings.region_endpoints,
    )


@contextlib.asynccontextmanager
async def primary_client(
    service: Literal["stepfunctions", "events"], settings: Settings, region: str | None = None
) -> AsyncIterator[Any]:
    """A client of `region`'s `service` (default: the configured primary; its region name, its
    endpoint) that fails fast: a secondary's writes go there, and an outage must read as
    ReadOnlyRegion quickly."""
    target = write_target(write_endpoints(settings), region)
    # The primary's region name, not ours: SigV4 signs for the region that answers. The
    # shared config's 1 s connect / 3 s read / one retry is what makes a down primary report
    # quickly; more retries would only make it slow to.
    async with aws_client(
        service,
        target.endpoint_url,
        target.primary_region,
        aws_credentials(settings),
        config=client_config(max_pool_connections=32),
    ) as client:
        yield client


def region_databases(
    stack: contextlib.AsyncExitStack, settings: Settings, pool: asyncpg.Pool[Any]
) -> dict[str, RegionPool]:
    """The relational models the writers of this region can reach, by region: every
    region's with HEMISPHERE_REGION_DATABASE_URLS (this region's through its own pool),
    else the primary's own only (none for a secondary)."""
    assert settings.database_url is not None
    urls = dict(settings.region_database_urls)
    if not urls and settings.region == settings.primary_region:
        urls = {settings.region: settings.database_url}
    databases: dict[str, RegionPool] = {}
    for region, dsn in urls.items():
        databases[region] = RegionPool(dsn, pool if region == settings.region else None)
        stack.push_async_callback(databases[region].aclose)
    return databases


async def write_ports(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    clients: AwsClients,
    databases: Mapping[str, RegionPool],
) -> tuple[OrderWorkflows, ProfileUpdates, WriteAvailability]:
    """The ports the mutations use, fenced and following the primary: this region's own
    when it is the primary (checkouts admitted by the sagas in flight on its task queue),
    another region's (guarded: ReadOnlyRegion when unreachable) otherwise. With
    HEMISPHERE_REGION_ENDPOINTS every region's is ready, so a promotion moves the writes
    without a restart; without it only the configured primary's. With the primary's
    database in `databases`, a checkout is answered once its intent is recorded there
    (regions.checkout_intents). The third: whether the region can write now (its starts'
    outcomes, and a probe of the primary's Step Functions while another region is primary)."""
    workflows: dict[str, OrderWorkflows] = {
        settings.region: StepFunctionsOrderWorkflows(clients.sfn, clients.machines)
    }
    profiles: dict[str, ProfileUpdates] = {
        settings.region: EventBridgeProfileUpdates(clients.events, settings.event_bus_name)
    }
    others = set(settings.region_endpoints) or {settings.primary_region}
    endpoints: dict[str, PrimaryEndpoint] = {}
    for region in sorted(others - {settings.region}):
        sfn = await stack.enter_async_context(primary_client("stepfunctions", settings, region))
        events = await stack.enter_async_context(primary_client("events", settings, region))
        workflows[region] = StepFunctionsOrderWorkflows(sfn, clients.machines.in_region(region))
        profiles[region] = EventBridgeProfileUpdates(events, settings.event_bus_name)
        endpoints[region] = StepFunctionsEndpoint(sfn)
    availability = WriteAvailability(clients.fence)
    if endpoints:
        probe = PrimaryProbe(availability, clients.fence, endpoints)
        task = asyncio.create_task(probe.run(), name="primary-probe")
        stack.push_async_callback(cancel_task, task)
    # The gate measures this region's task queue: it bites while this region is the
    # primary (a secondary's own queue stays empty; the primary's sagas are its business).
    routed: OrderWorkflows = RoutedOrderWorkflows(
        clients.fence, workflows, availability=availability
    )
    if databases:
        intents: dict[str, CheckoutIntentsAt] = {
            region: PostgresCheckoutIntentsAt(database) for region, database in databases.items()
        }
        routed = RecordedCheckouts(routed, RoutedCheckoutIntents(clients.fence, intents))
    return (
        AdmittedOrderWorkflows(routed, saga_admission(clients)),
        RoutedProfileUpdates(clients.fence, profiles),
        availability,
    )


def saga_admission(clients: AwsClients) -> SagaAdmission:
    """Checkouts refused (ThrottlingException, retryable) while this region's task queue
    holds as many sagas in flight as the workers can keep moving (workflows.admission)."""
    return SagaAdmission(SqsQueueDepth(clients.sqs, clients.machines.queue_url))


async def relational_fence(settings: Settings, pool: asyncpg.Pool[Any]) -> EpochFence:
    """The region and epoch this primary's writers run under, checked in each of their
    transactions: HEMISPHERE_EPOCH, else the epoch the database names for this region (it
    creates the record, epoch 1, on the first start)."""
    assert settings.database_url is not None
    topology = PostgresTopology(pool, settings.database_url)
    if await topology.init(RegionControl(settings.region, epoch=1)):
        log.info("topology: %s primary at epoch 1 (first start)", settings.region)
    stored = await topology.read()
    if settings.epoch is not None:
        return EpochFence(settings.region, settings.epoch)
    if stored is None or stored.primary_region != settings.region:
        log.warning(
            "topology: the database names %s primary, not %s: this region's writers write nothing",
            stored and stored.primary_region,
            settings.region,
        )
    return EpochFence(settings.region, stored.epoch if stored is not None else 1)


async def catalog_port(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    pool: asyncpg.Pool[Any],
    clients: AwsClients,
    databases: Mapping[str, RegionPool],
    *,
    is_primary: bool,
) -> Catalog:
    """Catalog writes, fenced at the start and in their transaction. With every region's
    database known (HEMISPHERE_REGION_DATABASE_URLS), they follow the primary from any
    region; otherwise only the primary has them: a secondary's are routed to no database,
    which answers ReadOnlyRegion as any write the region cannot make does."""
    assert settings.database_url is not None
    if settings.region_database_urls or not is_primary:
        if is_primary:
            await relational_fence(settings, pool)  # the topology record of a first start
        by_region: dict[str, CatalogAt] = {
            region: PostgresCatalogAt(database) for region, database in databases.items()
        }
        return RoutedCatalog(clients.fence, by_region)
    fence = await relational_fence(settings, pool)
    return FencedCatalog(PostgresCatalog(pool, settings.database_url, fence=fence), clients.fence)


async def start_workers(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    pool: asyncpg.Pool[Any],
    clients: AwsClients,
) -> None:
    """The primary region's workers: saga steps, the reconciler, profile updates. Each runs
    until the stack closes; the stack cancels them before it closes their clients."""
    assert settings.database_url is not None
    if settings.payments_url is None:
        raise SettingsError(
            "HEMISPHERE_PAYMENTS_URL is not set (hemisphere serve starts a simulated provider)"
        )
    payments = await stack.enter_async_context(
        HttpPaymentProvider(settings.payments_url, settings.payments_timeout_seconds)
    )
    fence = await relational_fence(settings, pool)
    store = PostgresSagaStore(pool, settings.database_url, payments, fence=fence)
    tasks = [
        run_worker(
            SqsTaskQueue(clients.sqs, clients.machines.queue_url),
            StepFunctionsTaskAnswers(clients.sfn),
            Activities(store).run,
        ),
        run_reconciler(store, StepFunctionsSagaEngine(clients.sfn, clients.machines)),
        run_profile_update_worker(
            SqsTaskQueue(
                clients.sqs, clients.profile_queue_url, delete_linger=DELETE_LINGER_SECONDS
            ),
            PostgresProfileStore(pool, settings.database_url, fence=fence),
        ),
    ]
    names = ("saga-worker", "saga-reconciler", "profile-worker")
    for name, coroutine in zip(names, tasks, strict=True):
        stack.push_async_callback(cancel_task, asyncio.create_task(coroutine, name=name))
