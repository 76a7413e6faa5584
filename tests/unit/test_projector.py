"""The projector: the seam between the relay and the projection writer."""

from __future__ import annotations

from collections.abc import Sequence

from domain.events import CustomerChanged, Event, ProductChanged
from projections.projector import Projector
from tests.support.builders import customer, product


class RecordingWriter:
    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    async def apply(self, events: Sequence[Event]) -> int:
        self.batches.append(list(events))
        return len(events) - 1  # pretend one was already up to date


async def test_handle_passes_the_batch_to_the_writer_and_returns_what_it_wrote() -> None:
    writer = RecordingWriter()
    events: list[Event] = [ProductChanged(product()), CustomerChanged(customer())]

    assert await Projector(writer).handle(events) == 1
    assert writer.batches == [events]


async def test_an_empty_batch_costs_no_write() -> None:
    writer = RecordingWriter()

    assert await Projector(writer).handle([]) == 0
    assert writer.batches == []
