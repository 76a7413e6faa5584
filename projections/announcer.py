"""Changes announced to the writing region's subscribers as soon as their items are written.

The durable path of a change to subscribers is the table's stream: the region's publisher
polls it and sends each change as a publish* mutation, in every region (replicated items
included). In the region that wrote the change that costs a stream poll (about 150 ms p50)
for nothing: the projector has just written the snapshot. So the projector also publishes it
straight to the region's broker, in the stream publication's exact form (the full snapshot,
marked as the stream's); the instances' VersionGate delivers whichever of the two arrives
first and drops the other (same version), and the read cache takes it the same way.

Best effort by design: a broker that cannot take it now loses nothing (the stream still
brings the change), so a failure is logged and the projection goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from domain.aggregates import snapshot_of
from domain.events import Event
from subscriptions.ports import STREAM_KEY, TRACE_KEY, Broker

log = logging.getLogger(__name__)


class ChangeAnnouncer:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def announce(self, events: Sequence[Event]) -> None:
        for event in events:
            aggregate, snapshot = snapshot_of(event)
            message = {**aggregate.to_plain(snapshot), STREAM_KEY: True}
            if event.trace_context:
                # The change's trace goes on to each subscriber's delivery, as the stream
                # publication's would (it is dropped as a duplicate when it comes).
                message[TRACE_KEY] = dict(event.trace_context)
            try:
                await self._broker.publish(aggregate.publish_mutation, message)
            except Exception as error:  # the stream brings it anyway
                log.debug("not announced (the stream will bring it): %s", error)
