"""Catalog administration on the relational model: the resolvers' Catalog port."""

from __future__ import annotations

from typing import Any

import asyncpg

from adapters.postgres import repositories
from adapters.postgres.errors import RelationalStoreUnavailableError
from adapters.postgres.pool import UNREACHABLE
from domain.commands import UpsertProduct
from domain.model import Product


class PostgresCatalog:
    def __init__(self, pool: asyncpg.Pool[Any], dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn

    async def upsert_product(self, command: UpsertProduct) -> Product:
        try:
            async with self._pool.acquire(timeout=5) as conn, conn.transaction():
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
