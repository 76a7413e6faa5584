"""What a readiness probe asks PostgreSQL: does it answer, is it a read-only standby, and how
far behind the projections are (the age of the oldest event the relay has not applied)."""

from __future__ import annotations

from typing import Any

import asyncpg

PROBE_TIMEOUT = 2.0


async def ping(pool: asyncpg.Pool[Any]) -> None:
    """Raises when the server does not answer a round trip within PROBE_TIMEOUT."""
    await pool.fetchval("SELECT 1", timeout=PROBE_TIMEOUT)


async def is_standby(pool: asyncpg.Pool[Any]) -> bool:
    """Whether the server is a hot standby (read-only, replaying a primary's WAL)."""
    return bool(await pool.fetchval("SELECT pg_is_in_recovery()", timeout=PROBE_TIMEOUT))


async def outbox_lag_seconds(pool: asyncpg.Pool[Any]) -> float:
    """Seconds since the oldest unpublished outbox event was written; 0 when all are applied.
    Served by the partial index on unpublished rows: cheap however long the outbox is."""
    lag = await pool.fetchval(
        """
        SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)
          FROM outbox
         WHERE published_at IS NULL
        """,
        timeout=PROBE_TIMEOUT,
    )
    return float(lag)
