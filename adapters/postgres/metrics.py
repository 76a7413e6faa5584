"""What /metrics reports of PostgreSQL: the orders by status (the sagas' outcomes and those
in flight) and, on a hot standby, how far its replay is behind the primary."""

from __future__ import annotations

from typing import Any

import asyncpg

from adapters.postgres.health import PROBE_TIMEOUT


async def orders_by_status(pool: asyncpg.Pool[Any]) -> dict[str, int]:
    """Orders by status: CONFIRMED / FAILED / CANCELLED are sagas' outcomes, the others
    (PENDING … CAPTURED) sagas in flight. One aggregate over the table: sampled every few
    seconds, not per request."""
    rows = await pool.fetch(
        "SELECT status, count(*) AS n FROM orders GROUP BY status", timeout=PROBE_TIMEOUT
    )
    return {str(row["status"]): int(row["n"]) for row in rows}


async def replay_lag_seconds(pool: asyncpg.Pool[Any]) -> float | None:
    """On a hot standby, the age of the last transaction it replayed while WAL is still to
    be replayed (0 when it has replayed all it received); None on a primary."""
    lag = await pool.fetchval(
        """
        SELECT CASE
                 WHEN NOT pg_is_in_recovery() THEN NULL
                 WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                 ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
               END
        """,
        timeout=PROBE_TIMEOUT,
    )
    return None if lag is None else float(lag)
