"""The transactional outbox: events are written with the change they describe, then relayed.

`append` runs in the writer's transaction, so an event exists if and only if its change
committed. `PostgresOutbox` is the relay's side (projections.ports.Outbox): it hands
unpublished events to the projector and wakes the relay through LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import asyncpg

from adapters.postgres.errors import RelationalStoreUnavailableError, describe_dsn
from adapters.postgres.pool import DEFAULT_CONNECT_TIMEOUT, Connection, connect
from adapters.tracing import trace_context
from domain.aggregates import snapshot_of
from domain.codec import event_from_plain, event_to_plain
from domain.events import Event
from domain.tracing import TRACE_CONTEXT_KEY

log = logging.getLogger(__name__)

CHANNEL = "hemisphere_outbox"
LISTENER_APPLICATION_NAME = "hemisphere-outbox-listener"

# What a lost or unreachable listening connection looks like; anything else is a bug and
# should surface rather than be retried forever.
_CONNECTION_TROUBLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    RelationalStoreUnavailableError,
)


def _setter(event: asyncio.Event) -> Callable[..., None]:
    """A callback for asyncpg's listeners that only sets `event` (whatever it is passed)."""
    return lambda *_args: event.set()


def _identity(event: Event) -> tuple[str, str, int]:
    aggregate, snapshot = snapshot_of(event)
    return aggregate.name, snapshot.id, snapshot.version


async def append(conn: Connection, events: Sequence[Event]) -> None:
    """Add `events` to the outbox, in this order, in the caller's transaction.

    Outside a transaction the event would commit even if the change it describes did not:
    that is refused. The payload is sent as text and cast in SQL, so it does not depend on
    which jsonb codec (if any) the connection has.
    """
    if not events:
        return
    if not conn.is_in_transaction():
        raise RuntimeError("outbox.append must run inside the transaction of the change")
    identities = [_identity(event) for event in events]
    # The span the change is made in (a saga step): the projection's stream publication
    # continues its trace.
    traced = {TRACE_CONTEXT_KEY: carrier} if (carrier := trace_context()) else {}
    await conn.execute(
        """
        INSERT INTO outbox (aggregate_kind, aggregate_id, version, payload)
        SELECT kind, aggregate_id, version, payload::jsonb
          FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
               WITH ORDINALITY AS e(kind, aggregate_id, version, payload, n)
         ORDER BY n
        """,
        [kind for kind, _, _ in identities],
        [aggregate_id for _, aggregate_id, _ in identities],
        [version for _, _, version in identities],
        [json.dumps({**event_to_plain(event), **traced}) for event in events],
    )


def _event(kind: str, payload: dict[str, Any]) -> Event:
    event = event_from_plain(kind, payload)
    carrier = payload.get(TRACE_CONTEXT_KEY)
    return replace(event, trace_context=carrier) if isinstance(carrier, dict) else event


class PostgresOutbox:
    """projections.ports.Outbox over the `outbox` table.

    `drain` uses the pool; `notifications` opens a dedicated connection per iterator, since
    a LISTEN lasts as long as its session and a pooled connection is shared. `aclose` ends
    the iterators and closes those connections; the pool belongs to the caller.
    """

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        dsn: str,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
        keepalive_interval: float = 30.0,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._keepalive_interval = keepalive_interval
        self._closed = asyncio.Event()
        self._listeners: set[asyncpg.Connection[Any]] = set()
        self._wakers: set[asyncio.Event] = set()

    async def drain(
        self, handle: Callable[[Sequence[Event]], Awaitable[object]], batch_size: int
    ) -> int:
        """Hand the oldest unpublished events to `handle`; mark them published if it returns.

        The rows stay locked while `handle` runs, so a concurrent drain skips them instead of
        handing them twice; if `handle` raises, the rollback unlocks them for a later try.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """
                SELECT id, aggregate_kind, payload::text AS payload
                  FROM outbox
                 WHERE published_at IS NULL
                 ORDER BY id
                 LIMIT $1
                   FOR UPDATE SKIP LOCKED
                """,
                batch_size,
            )
            if not rows:
                return 0
            events = [_event(row["aggregate_kind"], json.loads(row["payload"])) for row in rows]
            await handle(events)
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [row["id"] for row in rows],
            )
        return len(rows)

    async def notifications(self) -> AsyncIterator[None]:
        """Yields once as soon as it listens, then after each burst of notifications, and
        once after every reconnect: events committed while nobody listened are only found
        by draining. Ends when `aclose` is called."""
        delay = self._reconnect_delay
        while not self._closed.is_set():
            try:
                conn = await connect(
                    self._dsn,
                    connect_timeout=self._connect_timeout,
                    application_name=LISTENER_APPLICATION_NAME,
                )
            except _CONNECTION_TROUBLE as exc:
                log.warning("outbox listener cannot connect (%s); retrying in %.1fs", exc, delay)
                await self._pause(delay)
                delay = min(delay * 2, self._max_reconnect_delay)
                continue
            wake = asyncio.Event()
            self._listeners.add(conn)
            self._wakers.add(wake)
            # A dropped connection wakes the loop too; it then sees the connection closed.
            conn.add_termination_listener(_setter(wake))
            try:
                await conn.add_listener(CHANNEL, _setter(wake))
                delay = self._reconnect_delay
                yield None
                while await self._wait(conn, wake):
                    # Clear before yielding: notifications that arrive while the consumer
                    # drains set it again and give exactly one more turn (bursts coalesce).
                    wake.clear()
                    yield None
            except _CONNECTION_TROUBLE as exc:
                log.warning("outbox listener lost its connection: %s", exc)
            finally:
                self._listeners.discard(conn)
                self._wakers.discard(wake)
                await self._close_connection(conn)
            if not self._closed.is_set():
                log.warning(
                    "outbox listener reconnecting to %s in %.1fs", describe_dsn(self._dsn), delay
                )
                await self._pause(delay)
                delay = min(delay * 2, self._max_reconnect_delay)

    async def aclose(self) -> None:
        """End every `notifications()` iterator and close their connections."""
        self._closed.set()
        for wake in list(self._wakers):
            wake.set()
        for conn in list(self._listeners):
            await self._close_connection(conn)

    async def _wait(self, conn: asyncpg.Connection[Any], wake: asyncio.Event) -> bool:
        """Wait for a notification; False once the connection is gone or the outbox closed."""
        while not wake.is_set():
            try:
                await asyncio.wait_for(wake.wait(), timeout=self._keepalive_interval)
            except TimeoutError:
                # A silently dropped network path never reports itself: probe it now and
                # then, so the listener does not wait forever on a dead socket.
                await conn.execute("SELECT 1", timeout=self._connect_timeout)
        return not (self._closed.is_set() or conn.is_closed())

    async def _pause(self, seconds: float) -> None:
        """Sleep before reconnecting, but wake at once if the outbox is closed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=seconds)

    async def _close_connection(self, conn: asyncpg.Connection[Any]) -> None:
        if conn.is_closed():
            return
        try:
            await conn.close(timeout=self._connect_timeout)
        except _CONNECTION_TROUBLE:
            conn.terminate()
