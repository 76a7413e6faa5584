"""The projector: the seam between the relay and the projection writer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.codec import customer_to_plain
from domain.errors import BackendUnavailableError
from domain.events import CustomerChanged, Event, ProductChanged
from projections.announcer import ChangeAnnouncer
from projections.projector import Projector
from subscriptions.inprocess import InProcessBroker
from subscriptions.ports import STREAM_KEY, TRACE_KEY
from tests.support.builders import customer, product


class RecordingWriter:
    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    async def apply(self, events: Sequence[Event]) -> Sequence[Event]:
        self.batches.append(list(events))
        return events[1:]  # pretend the first was already up to date


async def test_handle_passes_the_batch_to_the_writer_and_returns_what_it_wrote() -> None:
    writer = RecordingWriter()
    events: list[Event] = [ProductChanged(product()), CustomerChanged(customer())]

    assert await Projector(writer).handle(events) == 1
    assert writer.batches == [events]


async def test_an_empty_batch_costs_no_write() -> None:
    writer = RecordingWriter()

    assert await Projector(writer).handle([]) == 0
    assert writer.batches == []


async def test_what_was_written_is_announced_in_the_stream_publication_s_form() -> None:
    broker = InProcessBroker()
    heard = broker.subscribe("publishCustomer")
    writer = RecordingWriter()
    events: list[Event] = [ProductChanged(product()), CustomerChanged(customer())]

    assert await Projector(writer, ChangeAnnouncer(broker)).handle(events) == 1
    message = await anext(aiter(heard))
    assert message == {**customer_to_plain(customer()), STREAM_KEY: True}


class RefusingBroker(InProcessBroker):
    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        raise BackendUnavailableError("Redis is down")


async def test_a_broker_that_is_down_costs_the_projection_nothing() -> None:
    writer = RecordingWriter()
    events: list[Event] = [ProductChanged(product()), CustomerChanged(customer())]
    assert await Projector(writer, ChangeAnnouncer(RefusingBroker())).handle(events) == 1


async def test_an_announcement_carries_the_change_s_trace() -> None:
    broker = InProcessBroker()
    heard = broker.subscribe("publishProduct")
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    event = ProductChanged(product(), trace_context=carrier)

    await Projector(RecordingWriter(), ChangeAnnouncer(broker)).handle([event, event])
    message = await anext(aiter(heard))
    assert message[TRACE_KEY] == carrier
