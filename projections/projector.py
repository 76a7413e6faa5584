"""Events to projection items: the step between the outbox and the projection store."""

from __future__ import annotations

from collections.abc import Sequence

from domain.events import Event
from projections.announcer import ChangeAnnouncer
from projections.ports import ProjectionWriter


class Projector:
    """Projects a batch of events through a ProjectionWriter.

    Deliberately thin: the event -> item mapping is the writer's (it owns the table layout),
    the ordering guarantees are the conditional writes'. This is the seam where metrics (lag,
    batch sizes, skipped writes) will be measured, without the relay or the writer knowing.
    """

    def __init__(self, writer: ProjectionWriter, announcer: ChangeAnnouncer | None = None) -> None:
        self._writer = writer
        # The writing region's subscribers hear a written change at once (announcer.py).
        self._announcer = announcer

    async def handle(self, events: Sequence[Event]) -> int:
        """Project `events`; returns how many items were written. Raises if the store fails
        (the outbox then keeps the events for a retry)."""
        if not events:
            return 0
        written = await self._writer.apply(events)
        if self._announcer is not None and written:
            await self._announcer.announce(written)
        return len(written)
