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


class PostgresCheckoutIntentsAt:
    """regions.checkout_intents.CheckoutIntentsAt in one region's PostgreSQL."""

    def __init__(self, database: RegionPool) -> None:
        self._database = database

    async def record(self, order_id: str, execution_input: str, under: RegionControl) -> bool:
        fence = EpochFence(under.primary_region, under.epoch)
        try:
            pool = await self._database.pool()
            async with pool.acquire(timeout=5) as conn, conn.transaction():
                await fence.check(conn)
                # The saga may be ahead already (CreateOrder filled the row): keep its input
                # and its clock; a new row is as idle as a saga that has not begun.
                # `xmax = 0` only on the row this statement inserted (an updated one has
                # our transaction's id there; a kept one returns no row).
                inserted = await conn.fetchval(
                    """
                    INSERT INTO sagas (order_id, checkout_input) VALUES ($1, $2)
                    ON CONFLICT (order_id) DO UPDATE
                       SET checkout_input = COALESCE(sagas.checkout_input, EXCLUDED.checkout_input)
                     WHERE sagas.checkout_input IS NULL
                    RETURNING xmax = 0
                    """,
                    order_id,
                    json.loads(execution_input),
                )
        except UNREACHABLE as exc:
            raise RelationalStoreUnavailableError(self._database.dsn, exc) from exc
        return inserted is True
