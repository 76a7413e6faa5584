"""The outbox relay against in-memory fakes of the outbox and the projection writer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence

import pytest

from domain.backoff import Backoff
from domain.errors import ProjectionStoreUnavailableError
from domain.events import Event, ProductChanged
from projections.projector import Projector
from projections.relay import OutboxRelay
from tests.support.builders import product

_CLOSED = object()


class FakeOutbox:
    """The Outbox port in memory: a batch is marked published only if `handle` returned."""

    def __init__(self) -> None:
        self.pending: list[Event] = []
        self.published: list[Event] = []
        self.drains = 0
        self.fail_drains = 0  # the next N drains fail before handing anything out
        self.fail_notifications = 0  # the next N notification streams fail at once
        self.listening = 0  # notification streams currently open
        self._signals: asyncio.Queue[object] = asyncio.Queue()

    def append(self, *events: Event, notify: bool = True) -> None:
        self.pending.extend(events)
        if notify:
            self._signals.put_nowait(None)

    def close(self) -> None:
        self._signals.put_nowait(_CLOSED)

    async def drain(
        self, handle: Callable[[Sequence[Event]], Awaitable[object]], batch_size: int
    ) -> int:
        self.drains += 1
        if self.fail_drains:
            self.fail_drains -= 1
            raise ConnectionError("outbox database unavailable")
        batch = self.pending[:batch_size]
        if not batch:
            return 0
        await handle(batch)
        del self.pending[: len(batch)]
        self.published.extend(batch)
        return len(batch)

    async def notifications(self) -> AsyncIterator[None]:
        if self.fail_notifications:
            self.fail_notifications -= 1
            raise ConnectionError("LISTEN connection lost")
        self.listening += 1
        try:
            while (signal := await self._signals.get()) is not _CLOSED:
                yield signal  # type: ignore[misc]
        finally:
            self.listening -= 1


class FakeWriter:
    """The ProjectionWriter port in memory; fails the next `fail_next` calls."""

    def __init__(self) -> None:
        self.written: list[Event] = []
        self.calls = 0
        self.fail_next = 0
        self.on_apply: Callable[[], None] | None = None

    async def apply(self, events: Sequence[Event]) -> Sequence[Event]:
        self.calls += 1
        if self.on_apply is not None:
            self.on_apply()
        if self.fail_next:
            self.fail_next -= 1
            raise ProjectionStoreUnavailableError("the projection store at test:0 is down")
        self.written.extend(events)
        return events


def _events(n: int, start: int = 0) -> list[Event]:
    return [ProductChanged(product(f"p-{i:05}")) for i in range(start, start + n)]


async def eventually(predicate: Callable[[], bool], within: float = 2.0) -> None:
    """Wait until `predicate()` holds (the fakes have no event to await for every state)."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(relay.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def outbox() -> FakeOutbox:
    return FakeOutbox()


@pytest.fixture
def writer() -> FakeWriter:
    return FakeWriter()


QUICK_RETRIES = Backoff(0.01, 0.05)


def relay_of(
    outbox: FakeOutbox,
    writer: FakeWriter,
    *,
    # Long by default: a test passes only if what it expects woke the relay.
    poll_interval: float = 60.0,
    backoff: Backoff = QUICK_RETRIES,
) -> OutboxRelay:
    return OutboxRelay(
        outbox, Projector(writer), batch_size=200, poll_interval=poll_interval, backoff=backoff
    )


@contextlib.contextmanager
def no_warnings_from_relay(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.INFO, logger="projections.relay"):
        yield
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_drain_all_hands_every_event_once_in_batches(
    outbox: FakeOutbox, writer: FakeWriter
) -> None:
    events = _events(450)
    outbox.append(*events)
    relay = relay_of(outbox, writer)

    assert await relay.drain_all() == 450
    assert writer.written == events
    assert writer.calls == 3  # 200 + 200 + 50
    assert outbox.pending == []
    assert await relay.drain_all() == 0
    assert writer.written == events


async def test_drain_all_raises_and_keeps_the_batch_when_projection_fails(
    outbox: FakeOutbox, writer: FakeWriter
) -> None:
    outbox.append(*_events(3))
    writer.fail_next = 1
    relay = relay_of(outbox, writer)

    with pytest.raises(ProjectionStoreUnavailableError):
        await relay.drain_all()
    assert len(outbox.pending) == 3
    assert await relay.drain_all() == 3


async def test_run_catches_up_at_start(outbox: FakeOutbox, writer: FakeWriter) -> None:
    outbox.append(*_events(5), notify=False)

    async with running(relay_of(outbox, writer)):
        await eventually(lambda: len(writer.written) == 5)


async def test_a_notification_wakes_the_relay(
    outbox: FakeOutbox, writer: FakeWriter, caplog: pytest.LogCaptureFixture
) -> None:
    with no_warnings_from_relay(caplog):
        async with running(relay_of(outbox, writer)):
            await eventually(lambda: outbox.drains >= 1 and outbox.listening == 1)
            await asyncio.sleep(0.02)
            assert writer.written == []

            first, second = _events(2)
            outbox.append(first)
            await eventually(lambda: writer.written == [first], within=1.0)
            outbox.append(second)
            await eventually(lambda: writer.written == [first, second], within=1.0)


async def test_a_notification_during_a_drain_causes_another_drain(
    outbox: FakeOutbox, writer: FakeWriter
) -> None:
    first, late = _events(2)

    def append_late_once() -> None:
        writer.on_apply = None
        outbox.append(late)  # arrives while `first` is being projected

    writer.on_apply = append_late_once
    outbox.append(first, notify=False)
    async with running(relay_of(outbox, writer)):
        await eventually(lambda: writer.written == [first, late], within=1.0)


async def test_the_safety_poll_finds_events_without_a_notification(
    outbox: FakeOutbox, writer: FakeWriter
) -> None:
    async with running(relay_of(outbox, writer, poll_interval=0.05)):
        await eventually(lambda: outbox.drains >= 1)
        events = _events(3)
        outbox.append(*events, notify=False)
        await eventually(lambda: writer.written == events, within=1.0)


async def test_a_failing_projection_is_retried_with_backoff_and_never_lost_nor_doubled(
    outbox: FakeOutbox, writer: FakeWriter, caplog: pytest.LogCaptureFixture
) -> None:
    events = _events(250)
    writer.fail_next = 4
    outbox.append(*events)

    with caplog.at_level(logging.INFO, logger="projections.relay"):
        async with running(relay_of(outbox, writer)) as task:
            await eventually(lambda: writer.written == events)
            assert not task.done()

    assert writer.calls == 4 + 2  # four failures, then 200 + 50
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4
    assert warnings[0].exc_info  # the traceback once per outage
    assert not any(r.exc_info for r in warnings[1:])
    assert "projecting again after 4 failures" in caplog.text


async def test_a_failing_outbox_is_retried_too(outbox: FakeOutbox, writer: FakeWriter) -> None:
    outbox.fail_drains = 2
    events = _events(3)
    outbox.append(*events)

    async with running(relay_of(outbox, writer)) as task:
        await eventually(lambda: writer.written == events)
        assert not task.done()


async def test_failing_notifications_are_listened_to_again(
    outbox: FakeOutbox, writer: FakeWriter
) -> None:
    outbox.fail_notifications = 2

    async with running(relay_of(outbox, writer)):
        await eventually(lambda: outbox.listening == 1)
        events = _events(1)
        outbox.append(*events)
        await eventually(lambda: writer.written == events, within=1.0)


async def test_closed_notifications_leave_the_safety_poll(
    outbox: FakeOutbox, writer: FakeWriter
) -> None:
    async with running(relay_of(outbox, writer, poll_interval=0.05)) as task:
        await eventually(lambda: outbox.listening == 1)
        outbox.close()
        await eventually(lambda: outbox.listening == 0)
        events = _events(2)
        outbox.append(*events, notify=False)
        await eventually(lambda: writer.written == events, within=1.0)
        assert not task.done()


async def test_cancellation_stops_the_relay_and_its_listener(
    outbox: FakeOutbox, writer: FakeWriter
) -> None:
    task = asyncio.create_task(relay_of(outbox, writer).run())
    await eventually(lambda: outbox.listening == 1)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert outbox.listening == 0
    outbox.append(*_events(1))
    await asyncio.sleep(0.05)
    assert writer.written == []


async def test_a_retry_waits_what_the_backoff_says(outbox: FakeOutbox, writer: FakeWriter) -> None:
    writer.fail_next = 1
    called_at: list[float] = []
    writer.on_apply = lambda: called_at.append(asyncio.get_running_loop().time())
    outbox.append(*_events(1))

    # The jitter at its top: the first retry waits the whole ceiling.
    async with running(relay_of(outbox, writer, backoff=Backoff(0.3, 1.0, random=lambda: 1.0))):
        await eventually(lambda: len(called_at) == 2)

    assert 0.3 <= called_at[1] - called_at[0] < 0.6


async def test_cancellation_during_backoff_stops_the_relay(
    outbox: FakeOutbox, writer: FakeWriter
) -> None:
    writer.fail_next = 1000
    outbox.append(*_events(1))
    task = asyncio.create_task(relay_of(outbox, writer, backoff=Backoff(10, 10)).run())
    await eventually(lambda: writer.calls == 1)

    task.cancel()
    async with asyncio.timeout(1):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert outbox.listening == 0
