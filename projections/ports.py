"""What the read side's writers need: an outbox to drain, snapshots to rebuild from, and a
projection store to write to. Implemented by adapters.postgres and adapters.dynamodb."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

from domain.events import Event


class ProjectionWriter(Protocol):
    async def apply(self, events: Sequence[Event]) -> Sequence[Event]:
        """Write each event's snapshot as its item unless the stored item is as new or newer
        (a conditional write). Returns the events whose items were written."""
        ...


class Outbox(Protocol):
    async def drain(
        self, handle: Callable[[Sequence[Event]], Awaitable[object]], batch_size: int
    ) -> int:
        """Claim up to `batch_size` unpublished events (SKIP LOCKED, so several relays share
        the work), await `handle(events)`, then mark them published in the same transaction.
        If `handle` raises, nothing is marked and the events are retried later.
        Returns how many events were handled."""
        ...

    def notifications(self) -> AsyncIterator[None]:
        """Yields whenever new events may be waiting (LISTEN/NOTIFY), and after a
        reconnect. Ends when the listener is closed."""
        ...


class SnapshotSource(Protocol):
    async def count(self) -> int:
        """How many aggregates `snapshots()` will yield."""
        ...

    def snapshots(self) -> AsyncIterator[Event]:
        """The current snapshot of every aggregate, as the event that would project it."""
        ...
