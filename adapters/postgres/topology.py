"""The topology in the relational model (migration 0004: one row of `region_topology`):
regions.ports.TopologyStore, and the epoch check every write transaction makes.

The row replicates with the database. A promotion raises it on the promoted database (after
pg_promote) with a compare-and-set: a lower epoch never overwrites a higher one, and two
regions cannot claim the same epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from adapters.postgres.errors import RelationalStoreUnavailableError
from adapters.postgres.pool import UNREACHABLE, Connection
from domain.errors import StaleEpochError
from domain.model import RegionControl

_CLAIM = """
INSERT INTO region_topology AS current (singleton, primary_region, epoch)
VALUES (true, $1, $2)
ON CONFLICT (singleton) DO UPDATE
   SET primary_region = EXCLUDED.primary_region, epoch = EXCLUDED.epoch, updated_at = now()
 WHERE current.epoch < EXCLUDED.epoch
    OR (current.epoch = EXCLUDED.epoch AND current.primary_region = EXCLUDED.primary_region)
RETURNING epoch
"""


async def read_topology(conn: Connection, *, lock: bool = False) -> RegionControl | None:
    """The row; with `lock`, held FOR SHARE until the transaction ends (a promotion's
    UPDATE waits for it)."""
    row = await conn.fetchrow(
        "SELECT primary_region, epoch FROM region_topology" + (" FOR SHARE" if lock else "")
    )
    if row is None:
        return None
    return RegionControl(primary_region=row["primary_region"], epoch=int(row["epoch"]))


@dataclass(frozen=True, slots=True)
class EpochFence:
    """What a writer of the relational model runs under: its region and epoch. `check`
    inside a transaction raises StaleEpochError unless the database names the same."""

    region: str
    epoch: int

    async def check(self, conn: Connection) -> None:
        stored = await read_topology(conn, lock=True)
        if stored is None:
            # A database that predates fencing (or a fresh one before the primary's first
            # start): nothing supersedes us yet.
            return
        self.refuse_unless(stored)

    def refuse_unless(self, stored: RegionControl) -> None:
        """StaleEpochError unless `stored` (the database's row) names this writer."""
        if stored.epoch != self.epoch or stored.primary_region != self.region:
            raise StaleEpochError(
                f"region {self.region} writes under epoch {self.epoch}, but the database "
                f"names {stored.primary_region} primary at epoch {stored.epoch}: "
                "nothing written"
            )


class PostgresTopology:
    """regions.ports.TopologyStore on `region_topology`."""

    name = "postgresql"

    def __init__(self, pool: asyncpg.Pool[Any], dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn

    async def read(self) -> RegionControl | None:
        try:
            async with self._pool.acquire(timeout=5) as conn:
                return await read_topology(conn)
        except UNREACHABLE as exc:
            raise RelationalStoreUnavailableError(self._dsn, exc) from exc

    async def claim(self, control: RegionControl) -> bool:
        try:
            async with self._pool.acquire(timeout=5) as conn:
                written = await conn.fetchval(_CLAIM, control.primary_region, control.epoch)
        except UNREACHABLE as exc:
            raise RelationalStoreUnavailableError(self._dsn, exc) from exc
        return written is not None

    async def init(self, control: RegionControl) -> bool:
        """Create the row if there is none (the primary's first start); never change one."""
        try:
            async with self._pool.acquire(timeout=5) as conn:
                written = await conn.fetchval(
                    "INSERT INTO region_topology (singleton, primary_region, epoch)"
                    " VALUES (true, $1, $2) ON CONFLICT DO NOTHING RETURNING epoch",
                    control.primary_region,
                    control.epoch,
                )
        except UNREACHABLE as exc:
            raise RelationalStoreUnavailableError(self._dsn, exc) from exc
        return written is not None
