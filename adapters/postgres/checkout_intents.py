"""A checkout's intent, recorded in the primary's relational model before it is acknowledged.

The checkout mutation answers once Step Functions has started the saga; the saga's first
step (CreateOrder) writes the order. If the primary region is lost in between, the order
existed only in the lost region's Step Functions: acknowledged, and gone. Recording the
execution's input in the saga's row (the one CreateOrder fills) before answering puts the
checkout into what the database replicates: after a promotion the new primary's reconciler
finds it idle, with no execution running, and re-runs it under its deterministic name, as it
re-runs any saga that stopped half-way. What is lost at most is what the replica had not
replayed at the kill: Aurora's RPO, not a whole saga's length.
"""

from __future__ import annotations

import json

from adapters.postgres.errors import RelationalStoreUnavailableError
from adapters.postgres.pool import UNREACHABLE, RegionPool
from adapters.postgres.topology import EpochFence
from domain.model import RegionControl

# One statement, its own transaction: the epoch check (the topology row held FOR SHARE, so a
# promotion's claim waits for it, as in EpochFence.check) and the saga row's INSERT. The same
# work as a transaction of four round trips (BEGIN, the check, the INSERT, COMMIT), in one: on
# every checkout, that was a tenth of the API's CPU. The row is written only when the
# database names no other primary or epoch; the fence's values come back to say why not.
# The saga may be ahead already (CreateOrder filled the row): its input and its clock are
# kept, and a new row is as idle as a saga that has not begun. `xmax = 0` only on the row
# this statement inserted (an updated one has our transaction's id there; a kept one returns
# no row).
_RECORD = """
WITH fence AS (
    SELECT primary_region, epoch FROM region_topology FOR SHARE
), recorded AS (
    INSERT INTO sagas (order_id, checkout_input)
    SELECT $1, $2
     WHERE NOT EXISTS (SELECT 1 FROM fence WHERE primary_region <> $3 OR epoch <> $4)
    ON CONFLICT (order_id) DO UPDATE
       SET checkout_input = COALESCE(sagas.checkout_input, EXCLUDED.checkout_input)
     WHERE sagas.checkout_input IS NULL
    RETURNING xmax = 0 AS first
)
SELECT (SELECT primary_region FROM fence) AS primary_region,
       (SELECT epoch FROM fence) AS epoch,
       (SELECT first FROM recorded) AS first
"""


class PostgresCheckoutIntentsAt:
    """regions.checkout_intents.CheckoutIntentsAt in one region's PostgreSQL."""

    def __init__(self, database: RegionPool) -> None:
        self._database = database

    async def record(self, order_id: str, execution_input: str, under: RegionControl) -> bool:
        try:
            pool = await self._database.pool()
            async with pool.acquire(timeout=5) as conn:
                row = await conn.fetchrow(
                    _RECORD,
                    order_id,
                    json.loads(execution_input),
                    under.primary_region,
                    under.epoch,
                )
        except UNREACHABLE as exc:
            raise RelationalStoreUnavailableError(self._database.dsn, exc) from exc
        assert row is not None  # a SELECT of scalar subqueries: always one row
        if row["epoch"] is not None:
            stored = RegionControl(primary_region=row["primary_region"], epoch=int(row["epoch"]))
            EpochFence(under.primary_region, under.epoch).refuse_unless(stored)
        return row["first"] is True
