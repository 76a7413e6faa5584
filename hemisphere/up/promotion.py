"""Fenced promotion of a secondary region, and the sagas the lost primary left half-way.

1. PostgreSQL: pg_promote() on the region's replica (it accepts writes on return).
2. Fence (regions.control via hemisphere.promotion): the epoch goes up in the promoted
   PostgreSQL and the region's control item, then in every live region's (the item
   replicates too); an old primary that comes back sees the newer epoch naming another
   primary and refuses writes.
3. Orphaned sagas: the lost primary's executions died with its Step Functions. Every saga
   not done in the promoted database is re-driven at once, from the replicated relational
   state, under the reconciler's deterministic re-run names (`<execution>-r<attempt>`):
   recorded steps answer their recorded result, so nothing is charged or reserved twice.
4. The region's workers start (`hemisphere worker`: outbox relay, saga steps, reconciler,
   profile updates) beside its running API, which follows the replicated control item: the
   promotion answers once that API names the region primary at the new epoch (it then starts
   sagas in its own region).
5. Then, after the answer: the other live secondaries' replicas follow the new primary (their
   APIs already send writes there). The region's API is not restarted (a restart drops its
   subscribers and takes it out of service for seconds): its catalog writes follow the
   control item to its own database like the sagas (regions.routing.RoutedCatalog).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from adapters.eventbridge import create_client as create_aws_client
from adapters.payments import HttpPaymentProvider
from adapters.postgres.pool import create_pool
from adapters.postgres.saga import PostgresSagaStore
from adapters.stepfunctions import StepFunctionsSagaEngine, ensure_state_machines
from adapters.stepfunctions import create_client as create_sfn_client
from hemisphere.promotion import claim_primary_region
from hemisphere.settings import Settings
from hemisphere.up import postgres
from hemisphere.up.provision import LOCAL_AWS_CREDENTIALS
from workflows.definitions import definitions
from workflows.reconciler import Reconciler

if TYPE_CHECKING:
    from hemisphere.up.orchestrator import World
    from hemisphere.up.region import Region

log = logging.getLogger(__name__)

# The API reads the control item every second; a loaded machine may take a few.
BELIEF_TIMEOUT = 60.0


def promote(world: World, region: Region) -> dict[str, Any]:
    began = time.monotonic()
    timeline: dict[str, float] = {}
    postgres.promote(region.node)
    region.postgres_role = "primary"
    timeline["postgres_promoted"] = time.monotonic() - began

    new_epoch = fence(world, region)
    timeline["fenced"] = time.monotonic() - began

    reruns = asyncio.run(redrive_orphaned_sagas(region, world.payments_url))
    timeline["sagas_redriven"] = time.monotonic() - began

    # Its API (started as a secondary's) already follows the control item: once it names
    # this region, mutations start sagas here; the workers run beside it.
    region.start_worker()
    region.wait_believes(region.name, new_epoch, world.secrets.api_key, BELIEF_TIMEOUT)
    timeline["accepts_writes"] = time.monotonic() - began

    world.actions.submit(lambda: follow_new_primary(world, region))
    message = (
        f"{region.name} is the primary at epoch {new_epoch}: it accepts writes "
        f"{timeline['accepts_writes']:.1f}s after the promotion began"
    )
    if reruns:
        message += f"; re-driving {len(reruns)} saga(s) the lost primary left in flight"
    return {
        "region": region.name,
        "primary": region.name,
        "epoch": new_epoch,
        "seconds": round(timeline["accepts_writes"], 3),
        "timeline": {step: round(seconds, 3) for step, seconds in timeline.items()},
        "redriven_sagas": reruns,
        "message": message,
    }


def fence(world: World, region: Region) -> int:
    """Raise the epoch: in the promoted PostgreSQL and the region's control item (both must
    answer), then in the other live regions' control items (replication brings it to the
    others). Returns the new epoch."""
    endpoints = {name: other.ports.aws_url for name, other in world.regions.items()}
    control = asyncio.run(
        claim_primary_region(
            region.name,
            database_url=region.node.url(),
            endpoints=endpoints,
            table_name=Settings().table_name,
            credentials=LOCAL_AWS_CREDENTIALS,
        )
    )
    world.state.primary = region.name
    world.state.epoch = control.epoch
    world.save_state()
    return control.epoch


async def redrive_orphaned_sagas(region: Region, payments_url: str) -> list[str]:
    """One reconciler pass in a primary whose Step Functions is fresh (just promoted, or
    restarted: the local endpoint keeps nothing) that counts every unfinished saga as stalled
    (idle for 0 s): none of them has an execution there any more. Run before the region's
    workers start. Returns the names of the executions started."""
    defaults = Settings()
    url, name = region.ports.aws_url, region.name
    dsn = region.node.url()
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        if await pool.fetchval("SELECT to_regclass('sagas')") is None:
            return []  # a database the API has not migrated yet: no saga ever ran
        async with (
            create_sfn_client(url, name, LOCAL_AWS_CREDENTIALS) as sfn,
            create_aws_client("sqs", url, name, LOCAL_AWS_CREDENTIALS) as sqs,
            HttpPaymentProvider(payments_url, defaults.payments_timeout_seconds) as payments,
        ):
            machines = await ensure_state_machines(
                sfn,
                sqs,
                definitions(),
                prefix=defaults.table_name,
                role_arn=defaults.state_machine_role_arn,
            )
            reconciler = Reconciler(
                PostgresSagaStore(pool, dsn, payments),
                StepFunctionsSagaEngine(sfn, machines),
                idle_for=timedelta(0),
                batch_size=1000,
            )
            return await reconciler.run_once()
    finally:
        await pool.close()


def follow_new_primary(world: World, primary: Region) -> None:
    """The other live secondaries' replicas stream from the new primary. (Their APIs send
    writes to the primary the replicated control item names: no restart.)"""
    for other in world.regions.values():
        if other is primary or other.down:
            continue
        try:
            lost = postgres.follow(other.node, other.ports.postgres_via[primary.name])
            if postgres.lost_anything(lost):
                assert lost is not None
                print(
                    f"{other.name} rewound to follow {primary.name}; LOST: "
                    f"{postgres.describe_lost(lost)}",
                    flush=True,
                )
            other.postgres_role = "replica"
        except Exception as error:
            print(f"{other.name} could not follow {primary.name}: {error}", flush=True)
