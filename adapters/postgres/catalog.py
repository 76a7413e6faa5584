"""Catalog administration on the relational model: the resolvers' Catalog port."""

from __future__ import annotations

from typing import Any

import asyncpg

from adapters.postgres import repositories
from adapters.postgres.errors import RelationalStoreUnavailableError
from adapters.postgres.pool import UNREACHABLE, RegionPool
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
    given (regions.routing.CatalogAt)."""

    def __init__(self, database: RegionPool) -> None:
        self._database = database

    async def upsert_product(self, command: UpsertProduct, under: RegionControl) -> Product:
        fence = EpochFence(under.primary_region, under.epoch)
        pool = await self._database.pool()
        return await PostgresCatalog(pool, self._database.dsn, fence=fence).upsert_product(command)
