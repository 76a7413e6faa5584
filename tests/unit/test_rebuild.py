"""projections.rebuild with in-memory fakes: batching, progress, and cleanup on failure.
(Against DynamoDB: tests/integration/test_projections_rebuild.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from domain.errors import ProjectionStoreUnavailableError
from domain.events import Event, ProductChanged
from projections.rebuild import rebuild
from tests.support.builders import product


class ListSource:
    def __init__(self, events: list[Event], *, count: int | None = None) -> None:
        self.events = events
        self._count = len(events) if count is None else count
        self.closed = False

    async def count(self) -> int:
        return self._count

    async def snapshots(self) -> AsyncIterator[Event]:
        try:
            for event in self.events:
                yield event
        finally:
            self.closed = True


class CountingWriter:
    def __init__(self, *, fail_on_batch: int | None = None) -> None:
        self.batches: list[int] = []
        self.fail_on_batch = fail_on_batch

    async def apply(self, events: Sequence[Event]) -> Sequence[Event]:
        if len(self.batches) == self.fail_on_batch:
            raise ProjectionStoreUnavailableError("down")
        self.batches.append(len(events))
        return events


def _products(n: int) -> list[Event]:
    return [ProductChanged(product(f"p-{i:04}")) for i in range(n)]


async def test_writes_every_snapshot_in_batches_and_reports_progress() -> None:
    writer = CountingWriter()
    seen: list[tuple[int, int]] = []

    written = await rebuild(
        ListSource(_products(250)), writer, lambda done, total: seen.append((done, total)), 100
    )

    assert written == 250
    assert writer.batches == [100, 100, 50]
    assert seen == [(0, 250), (100, 250), (200, 250), (250, 250)]


async def test_an_empty_source_reports_zero_of_zero() -> None:
    seen: list[tuple[int, int]] = []

    assert await rebuild(ListSource([]), CountingWriter(), lambda d, t: seen.append((d, t))) == 0
    assert seen == [(0, 0)]


async def test_progress_never_exceeds_100_percent_when_aggregates_appear_meanwhile() -> None:
    seen: list[tuple[int, int]] = []

    await rebuild(
        ListSource(_products(5), count=3), CountingWriter(), lambda d, t: seen.append((d, t)), 2
    )

    assert all(done <= total for done, total in seen)
    assert seen[-1] == (5, 5)


async def test_a_failing_write_propagates_and_closes_the_snapshot_stream() -> None:
    source = ListSource(_products(10))

    with pytest.raises(ProjectionStoreUnavailableError):
        await rebuild(source, CountingWriter(fail_on_batch=1), batch_size=3)

    assert source.closed
