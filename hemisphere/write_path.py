"""The write side's wiring: the sagas on Step Functions, async mutations on EventBridge, and
the workers that run them. Read local, write global: a secondary region sends its writes to
the primary's Step Functions and event bus, and turns read-only when it cannot reach them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from adapters.aws import StaticCredentials, aws_client, client_config
from adapters.eventbridge import (
    EventBridgeProfileUpdates,
    ensure_profile_update_route,
)
from adapters.eventbridge import create_client as create_aws_client
from adapters.payments import HttpPaymentProvider
from adapters.postgres.profiles import PostgresProfileStore
from adapters.postgres.saga import PostgresSagaStore
from adapters.sqs import SqsTaskQueue
from adapters.stepfunctions import (
    SagaMachines,
    StepFunctionsOrderWorkflows,
    StepFunctionsSagaEngine,
    StepFunctionsTaskAnswers,
    ensure_state_machines,
)
from adapters.stepfunctions import create_client as create_sfn_client
from hemisphere.settings import Settings, SettingsError
from regions.routing import (
    ProfileUpdatesReadOnlyWhenPrimaryUnreachable,
    ReadOnlyWhenPrimaryUnreachable,
    write_target,
)
from resolvers.ports import OrderWorkflows, ProfileUpdates
from workflows.activities import Activities
from workflows.definitions import definitions
from workflows.profile_updates import run_profile_update_worker
from workflows.reconciler import run_reconciler
from workflows.worker import run_worker


@dataclass(frozen=True)
class AwsClients:
    """This region's clients of the write-side services."""

    sfn: Any
    sqs: Any
    events: Any
    machines: SagaMachines
    profile_queue_url: str


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
    return AwsClients(sfn, sqs, events, machines, queue_url)


@contextlib.asynccontextmanager
async def primary_client(
    service: Literal["stepfunctions", "events"], settings: Settings
) -> AsyncIterator[Any]:
    """A client of the primary region's `service` (its region name, its endpoint) that fails
    fast: a secondary's writes go there, and an outage must read as ReadOnlyRegion quickly."""
    target = write_target(settings)
    credentials = None
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        credentials = StaticCredentials(settings.aws_access_key_id, settings.aws_secret_access_key)
    # The primary's region name, not ours: SigV4 signs for the region that answers. The
    # shared config's 1 s connect / 3 s read / one retry is what makes a down primary report
    # quickly; more retries would only make it slow to.
    async with aws_client(
        service,
        target.endpoint_url,
        target.primary_region,
        credentials,
        config=client_config(max_pool_connections=32),
    ) as client:
        yield client


async def write_ports(
    stack: contextlib.AsyncExitStack, settings: Settings, clients: AwsClients
) -> tuple[OrderWorkflows, ProfileUpdates]:
    """The ports the mutations use: local in the primary; the primary's, guarded, elsewhere."""
    if settings.region == settings.primary_region:
        return (
            StepFunctionsOrderWorkflows(clients.sfn, clients.machines),
            EventBridgeProfileUpdates(clients.events, settings.event_bus_name),
        )
    primary_sfn = await stack.enter_async_context(primary_client("stepfunctions", settings))
    primary_events = await stack.enter_async_context(primary_client("events", settings))
    workflows = StepFunctionsOrderWorkflows(
        primary_sfn, clients.machines.in_region(settings.primary_region)
    )
    profiles = EventBridgeProfileUpdates(primary_events, settings.event_bus_name)
    return (
        ReadOnlyWhenPrimaryUnreachable(
            workflows, region=settings.region, primary_region=settings.primary_region
        ),
        ProfileUpdatesReadOnlyWhenPrimaryUnreachable(
            profiles, region=settings.region, primary_region=settings.primary_region
        ),
    )


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
    store = PostgresSagaStore(pool, settings.database_url, payments)
    tasks = [
        run_worker(
            SqsTaskQueue(clients.sqs, clients.machines.queue_url),
            StepFunctionsTaskAnswers(clients.sfn),
            Activities(store).run,
        ),
        run_reconciler(store, StepFunctionsSagaEngine(clients.sfn, clients.machines)),
        run_profile_update_worker(
            clients.sqs,
            clients.profile_queue_url,
            PostgresProfileStore(pool, settings.database_url),
        ),
    ]
    names = ("saga-worker", "saga-reconciler", "profile-worker")
    for name, coroutine in zip(names, tasks, strict=True):
        stack.push_async_callback(cancel_task, asyncio.create_task(coroutine, name=name))


async def cancel_task(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
