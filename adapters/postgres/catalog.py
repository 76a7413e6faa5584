"""Catalog administration on the relational model: the resolvers' Catalog port."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from adapters.postgres import repositories
from adapters.postgres.errors import RelationalStoreUnavailableError
from adapters.postgres.pool import UNREACHABLE, create_pool
from adapters.postgres.topology import EpochFence
from domain.commands import UpsertProduct
from domain.model import Product, RegionControl


class PostgresCatalog:
    def __init__(
        self, pool: asyncpg.Pool[Any], dsn: str, *, fence: EpochFence | None = None
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        # Checked in the write's transaction: a demoted primary's catalog writes nothing.
        self._fence = fence

    async def upsert_product(self, command: UpsertProduct) -> Product:
        try:
            async with self._pool.acquire(timeout=5) as conn, conn.transaction():
                if self._fence is not None:
                    await self._fence.check(conn)
                return await repositories.upsert_product(
                    conn,
                    command.id,
                    command.sku,
                    command.name,
                    command.description,
                    command.category,
                    command.price,
                    command.available,
                )
        except UNREACHABLE as exc:
            raise RelationalStoreUnavailableError(self._dsn, exc) from exc


class PostgresCatalogAt:
    """Catalog writes in one region's PostgreSQL under the primary and epoch each write is
    given (regions.routing.CatalogAt): `pool` when it is this region's own, else one made
    on the first write there (a region nobody writes to costs no connection), and made again
    after a failure to connect."""

    def __init__(self, dsn: str, pool: asyncpg.Pool[Any] | None = None) -> None:
        self._dsn = dsn
        self._pool = pool
        self._own_pool = pool is None
        self._connecting = asyncio.Lock()

    async def upsert_product(self, command: UpsertProduct, under: RegionControl) -> Product:
        fence = EpochFence(under.primary_region, under.epoch)
        catalog = PostgresCatalog(await self._pool_now(), self._dsn, fence=fence)
        return await catalog.upsert_product(command)

    async def _pool_now(self) -> asyncpg.Pool[Any]:
        async with self._connecting:
            if self._pool is None:
                # Few connections: catalog writes are rare, and this is another region's
                # database.
                self._pool = await create_pool(self._dsn, min_size=0, max_size=2)
            return self._pool

    async def aclose(self) -> None:
        if self._own_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None
