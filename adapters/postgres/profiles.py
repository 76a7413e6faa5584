"""Applying an asynchronous profile update to the relational model, once per request.

One transaction claims the request's (customer, idempotency key) in
`profile_update_requests`, changes the customer and appends the events to the outbox. A
redelivered message, or the same key sent again, finds the claim and changes nothing; two
deliveries at the same moment queue on the claim's primary key, so only one applies.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

import asyncpg

from adapters.postgres import repositories
from adapters.postgres.errors import RelationalStoreUnavailableError
from adapters.postgres.pool import UNREACHABLE, Connection
from adapters.postgres.topology import EpochFence
from domain.commands import UpdateCustomerProfile
from domain.errors import BadRequestError

log = logging.getLogger(__name__)

# A pool that stays exhausted this long counts as unavailable: the message comes back later.
ACQUIRE_TIMEOUT = 5.0


class ProfileUpdateOutcome(enum.StrEnum):
    APPLIED = "applied"
    # The same request again (a redelivery, a resent mutation): nothing to do.
    DUPLICATE = "duplicate"
    # The key was used before for another change to this customer: the first one stands.
    CONFLICT = "conflict"
    # Recorded but not applicable (unknown customer, an email the model refuses).
    REJECTED = "rejected"


async def apply_profile_update(
    pool: asyncpg.Pool[Any],
    request_id: str,
    command: UpdateCustomerProfile,
    fence: EpochFence | None = None,
) -> ProfileUpdateOutcome:
    """Apply `command` unless its (customer, key) was seen before; see ProfileUpdateOutcome.

    Raises asyncpg's errors when PostgreSQL cannot be reached (nothing was applied: the
    message stays on the queue and comes back), and StaleEpochError when `fence` (the region
    and epoch the worker runs under) is not what the database names: a demoted primary's
    worker applies nothing.
    """
    async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
        if fence is not None:
            await fence.check(conn)
        claimed = await conn.fetchval(
            """
            INSERT INTO profile_update_requests
                   (customer_id, idempotency_key, request_id, name, email, status)
            VALUES ($1, $2, $3, $4, $5, 'APPLIED')
            ON CONFLICT (customer_id, idempotency_key) DO NOTHING
            RETURNING true
            """,
            command.customer_id,
            command.idempotency_key,
            request_id,
            command.name,
            command.email,
        )
        if not claimed:
            return await _seen_before(conn, command)

        current = await conn.fetchrow(
            "SELECT name, email, home_region FROM customers WHERE id = $1 FOR UPDATE",
            command.customer_id,
        )
        if current is None:
            return await _reject(conn, command, f"customer {command.customer_id} not found")
        try:
            # A savepoint: a value the model refuses undoes the change, not the claim.
            async with conn.transaction():
                # upsert_customer keeps the loyalty points, appends the customer's event and,
                # on a rename, a new version and event of each of the customer's orders
                # (they show the customer's name).
                await repositories.upsert_customer(
                    conn,
                    command.customer_id,
                    command.name if command.name is not None else current["name"],
                    command.email if command.email is not None else current["email"],
                    current["home_region"],
                )
        except (BadRequestError, asyncpg.CheckViolationError) as exc:
            return await _reject(conn, command, str(exc))
        return ProfileUpdateOutcome.APPLIED


async def _seen_before(conn: Connection, command: UpdateCustomerProfile) -> ProfileUpdateOutcome:
    first = await conn.fetchrow(
        """
        SELECT name, email FROM profile_update_requests
         WHERE customer_id = $1 AND idempotency_key = $2
        """,
        command.customer_id,
        command.idempotency_key,
    )
    if first is not None and (first["name"], first["email"]) != (command.name, command.email):
        return ProfileUpdateOutcome.CONFLICT
    return ProfileUpdateOutcome.DUPLICATE


async def _reject(
    conn: Connection, command: UpdateCustomerProfile, reason: str
) -> ProfileUpdateOutcome:
    await conn.execute(
        """
        UPDATE profile_update_requests SET status = 'REJECTED', reason = $3
         WHERE customer_id = $1 AND idempotency_key = $2
        """,
        command.customer_id,
        command.idempotency_key,
        reason,
    )
    return ProfileUpdateOutcome.REJECTED


class PostgresProfileStore:
    """The profile update worker's store (workflows.ports.ProfileStore): an
    unreachable server becomes RelationalStoreUnavailableError, which the worker retries."""

    def __init__(
        self, pool: asyncpg.Pool[Any], dsn: str, *, fence: EpochFence | None = None
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._fence = fence

    async def apply_profile_update(
        self, request_id: str, command: UpdateCustomerProfile
    ) -> ProfileUpdateOutcome:
        try:
            return await apply_profile_update(self._pool, request_id, command, self._fence)
        except UNREACHABLE as exc:
            raise RelationalStoreUnavailableError(self._dsn, exc) from exc
