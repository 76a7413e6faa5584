"""The topology's administration, wired for `hemisphere up` and the drill: read who is primary
in every region, and claim the primary role for a region after its database was promoted
(regions.control.claim_primary on PostgreSQL and the control items).

    await promote_database(...)                  # pg_promote() of REGION's replica (PG's)
    control = await claim_primary_region(REGION, database_url=..., endpoints=..., ...)
    # then start REGION's workers: `hemisphere api`/`worker` with HEMISPHERE_PRIMARY_REGION=
    # REGION (HEMISPHERE_EPOCH=control.epoch, or nothing: they read it)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from adapters.dynamodb.client import StaticCredentials, create_client
from adapters.dynamodb.topology import DynamoTopologyStore
from adapters.postgres.pool import create_pool
from adapters.postgres.topology import PostgresTopology
from domain.model import RegionControl
from regions.control import claim_primary, read_newest
from regions.ports import TopologyStore


async def claim_primary_region(
    region: str,
    *,
    database_url: str,
    endpoints: Mapping[str, str],
    table_name: str,
    credentials: StaticCredentials | None = None,
    epoch: int | None = None,
) -> RegionControl:
    """Make `region` the primary under the next epoch (or `epoch`, to retry idempotently):
    in the promoted database at `database_url` and in `region`'s control item (both must
    answer), then in the other regions' control items that answer (`endpoints`: every
    region's AWS endpoint; the replicators bring it to the others). Raises
    regions.control.EpochConflictError when a newer or rival claim is stored."""
    if region not in endpoints:
        raise ValueError(f"no AWS endpoint given for {region}")
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        async with contextlib.AsyncExitStack() as stack:
            stores: dict[str, TopologyStore] = {}
            for name, endpoint in endpoints.items():
                client = await stack.enter_async_context(create_client(endpoint, name, credentials))
                stores[name] = DynamoTopologyStore(client, table_name, name)
            required = [PostgresTopology(pool, database_url), stores.pop(region)]
            return await claim_primary(region, required, list(stores.values()), epoch=epoch)
    finally:
        await pool.close()


async def read_topologies(
    *,
    endpoints: Mapping[str, str],
    table_name: str,
    credentials: StaticCredentials | None = None,
) -> dict[str, RegionControl | None]:
    """Each region's control item as that region sees it now (None: none, or no answer)."""
    async with contextlib.AsyncExitStack() as stack:
        stores = [
            DynamoTopologyStore(
                await stack.enter_async_context(create_client(endpoint, name, credentials)),
                table_name,
                name,
            )
            for name, endpoint in endpoints.items()
        ]
        # Side by side: a region that is down costs its timeout once, not once per region.
        seen = await asyncio.gather(*(read_newest([store]) for store in stores))
    return dict(zip(endpoints, seen, strict=True))
