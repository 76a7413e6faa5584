"""Rebuild every projection from the relational model (`hemisphere projections rebuild`, and at
start when the table is new).

Safe beside a running relay: the writes are the same conditional ones, so a snapshot read
before a concurrent change never replaces the newer item the relay wrote.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from domain.events import Event
from projections.ports import ProjectionWriter, SnapshotSource

Progress = Callable[[int, int], None]


async def rebuild(
    source: SnapshotSource,
    writer: ProjectionWriter,
    progress: Progress | None = None,
    batch_size: int = 100,
) -> int:
    """Write the current snapshot of every aggregate, `batch_size` at a time, calling
    `progress(done, total)` after each batch. Returns how many items were written (items
    already as new or newer are left alone and not counted)."""
    total = await source.count()
    done = written = 0
    if progress is not None:
        progress(0, total)
    snapshots = source.snapshots()
    try:
        batch: list[Event] = []
        async for event in snapshots:
            batch.append(event)
            if len(batch) >= batch_size:
                written += len(await writer.apply(batch))
                done += len(batch)
                batch = []
                _report(progress, done, total)
        if batch:
            written += len(await writer.apply(batch))
            done += len(batch)
            _report(progress, done, total)
    finally:
        await _close(snapshots)
    return written


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        # Aggregates created since count() make done exceed total; never report 110 %.
        progress(done, max(total, done))


async def _close(iterator: AsyncIterator[Event]) -> None:
    # An abandoned snapshot iterator (a write failed) may hold a server-side cursor and its
    # transaction open until garbage collection; close it now when it can be closed.
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
