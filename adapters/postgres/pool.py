"""Connections to PostgreSQL: the shared pool and single dedicated connections.

Both fail fast with RelationalStoreUnavailableError when the server cannot be reached:
asyncpg's own connect timeout is a minute, long enough for a health check or a start-up
to look hung.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from adapters.postgres.errors import RelationalStoreUnavailableError

# What the adapter's functions accept: a connection of their own or one lent by the pool.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

DEFAULT_CONNECT_TIMEOUT = 5.0

# Failures that mean "not reachable now" (retry later), as opposed to a wrong password or a
# missing database, which are configuration errors and surface as they are.
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.PostgresConnectionError,
)


async def register_codecs(conn: asyncpg.Connection[Any]) -> None:
    """jsonb and json as Python values, so callers pass and get dicts, not JSON text."""
    for type_name in ("jsonb", "json"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def keep_session(conn: asyncpg.Connection[Any]) -> None:
    """The pool's reset on release: nothing to send. asyncpg's default sends a query on every
    release (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`), a round trip that
    the releasing code waits for: every statement outside a transaction took two, every step
    transaction one more. None of that state is ever left on a pooled connection here: no
    session SET (transaction settings end with their transaction), no LISTEN (the outbox's
    listener has a connection of its own: `connect`), no cursor outside a transaction, and
    the one session advisory lock (migrations) is unlocked by the code that took it. An open
    transaction is still rolled back on release (asyncpg does that before calling this)."""


async def create_pool(
    dsn: str,
    min_size: int = 1,
    max_size: int = 10,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    command_timeout: float | None = None,
) -> asyncpg.Pool[asyncpg.Record]:
    """A pool whose connections decode jsonb; checked with one round trip before it is
    returned, so a down server is reported now, not at the first request."""
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=register_codecs,
            reset=keep_session,
            timeout=connect_timeout,
            command_timeout=command_timeout,
        )
    except UNREACHABLE as exc:
        raise RelationalStoreUnavailableError(dsn, exc) from exc
    try:
        # With min_size=0 creating the pool connects to nothing: probe explicitly.
        async with pool.acquire(timeout=connect_timeout) as conn:
            await conn.execute("SELECT 1", timeout=connect_timeout)
    except UNREACHABLE as exc:
        await pool.close()
        raise RelationalStoreUnavailableError(dsn, exc) from exc
    return pool


async def connect(
    dsn: str,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    application_name: str | None = None,
) -> asyncpg.Connection[asyncpg.Record]:
    """One connection outside the pool (a LISTEN needs its own), with the pool's codecs."""
    settings = {"application_name": application_name} if application_name else None
    try:
        conn = await asyncpg.connect(dsn, timeout=connect_timeout, server_settings=settings)
    except UNREACHABLE as exc:
        raise RelationalStoreUnavailableError(dsn, exc) from exc
    await register_codecs(conn)
    return conn


class RegionPool:
    """A region's database as the writers of any region reach it: `pool` when it is this
    region's own, else a small one made on the first write there (a region nobody writes to
    costs no connection) and made again after a failure to connect."""

    def __init__(self, dsn: str, pool: asyncpg.Pool[Any] | None = None) -> None:
        self.dsn = dsn
        self._pool = pool
        self._own_pool = pool is None
        self._connecting = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool[Any]:
        async with self._connecting:
            if self._pool is None:
                # Few connections: another region's database, for its rare or short writes.
                self._pool = await create_pool(self.dsn, min_size=0, max_size=4)
            return self._pool

    async def aclose(self) -> None:
        if self._own_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None
